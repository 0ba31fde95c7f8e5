using System.Buffers.Binary;
using SearchOrchestrator.Cli.Commands;

namespace SearchOrchestrator.Cli.Tests.Commands;

public sealed class GenerateCommandTests : IDisposable
{
    private readonly DirectoryInfo _output = Directory.CreateTempSubdirectory("searchorch-cli-");

    public void Dispose() => _output.Delete(recursive: true);

    private static (int Width, int Height) PngSize(string path)
    {
        var bytes = File.ReadAllBytes(path);
        Assert.Equal(new byte[] { 0x89, 0x50, 0x4E, 0x47 }, bytes[..4]);
        return (BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(16)), BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(20)));
    }

    [Fact]
    public async Task Generate_OneSample_WritesAnUpscaledImageAndPrintsCountAndScore()
    {
        var path = Path.Combine(_output.FullName, "seven.png");

        var (exit, stdout, stderr) = await SearchorchProcess.RunAsync("generate", "--model", "counting", "--condition", "7", "--steps", "10", "--seed", "1", "--guidance", "2", "--out", path);

        Assert.True(exit == 0, stderr);
        Assert.Equal((8 + (24 * 8) + 8, 8 + (24 * 8) + 8), PngSize(path));
        Assert.Contains("count-verifier", stdout);
        Assert.Matches(@"\n\s+0\s+7\s+\d+\s+[01]\.\d{3}\n", stdout);
        Assert.Contains("exact count:", stdout);
        Assert.Contains("NFE 10 in 10 batches (mean 2.0 rows)", stdout);
    }

    [Fact]
    public async Task Generate_FourSamples_WritesALabelledGrid()
    {
        var path = Path.Combine(_output.FullName, "grid.png");

        var (exit, stdout, stderr) = await SearchorchProcess.RunAsync("generate", "--model", "counting", "--condition", "2,5", "--samples", "4", "--steps", "5", "--out", path);

        Assert.True(exit == 0, stderr);
        // Two columns and two rows of 192-pixel tiles, each row with a 15-pixel caption and gaps of 8.
        Assert.Equal((8 + (2 * (192 + 8)), 8 + (2 * (15 + 8 + 192 + 8))), PngSize(path));
        Assert.Contains("NFE 20 in ", stdout);
    }

    [Fact]
    public async Task Generate_SameSeedTwice_WritesIdenticalFiles()
    {
        string first = Path.Combine(_output.FullName, "a.png"), second = Path.Combine(_output.FullName, "b.png");

        await SearchorchProcess.RunAsync("generate", "--model", "counting", "--condition", "4", "--steps", "8", "--seed", "5", "--eta", "1", "--out", first);
        await SearchorchProcess.RunAsync("generate", "--model", "counting", "--condition", "4", "--steps", "8", "--seed", "5", "--eta", "1", "--out", second);

        Assert.Equal(File.ReadAllBytes(first), File.ReadAllBytes(second));
    }

    [Theory]
    [InlineData("--model nope", "searchorch: error: no denoiser named 'nope' in the model repository; available: counting.")]
    [InlineData("--model count-verifier", "searchorch: error: model 'count-verifier' is a verifier, not a denoiser.")]
    [InlineData("--condition 12", "searchorch: error: condition '12' is not in the vocabulary of model 'counting'; use one of: 1, 2, 3, 4, 5, 6, 7, 8, 9.")]
    [InlineData("--steps 0", "searchorch: error: steps must be between 1 and 1000 (the model's training steps), got 0.")]
    [InlineData("--samples 0", "searchorch: error: --samples must be at least 1, got 0.")]
    [InlineData("--eta 2", "searchorch: error: eta must be between 0 (deterministic DDIM) and 1 (ancestral), got 2.")]
    [InlineData("--verifier counting", "searchorch: error: model 'counting' is a denoiser, not a verifier.")]
    [InlineData("--out /nonexistent-folder/x.png", "searchorch: error: --out: the folder '/nonexistent-folder' does not exist.")]
    [InlineData("--out picture.jpg", "searchorch: error: --out must name a .png file, got 'picture.jpg'.")]
    public async Task Generate_BadArgument_PrintsOneLineNamingItAndWritesNothing(string change, string expected)
    {
        var args = new Dictionary<string, string>
        {
            ["--model"] = "counting",
            ["--condition"] = "3",
            ["--steps"] = "2",
            ["--out"] = Path.Combine(_output.FullName, "out.png"),
        };
        var parts = change.Split(' ');
        args[parts[0]] = parts[1];

        var (exit, stdout, stderr) = await SearchorchProcess.RunAsync(["generate", .. args.SelectMany(p => new[] { p.Key, p.Value })]);

        Assert.Equal(2, exit);
        Assert.Equal(expected, stderr.TrimEnd('\n'));
        Assert.DoesNotContain("NFE", stdout);
        Assert.Empty(_output.GetFiles());
    }

    [Fact]
    public async Task Generate_MissingRequiredOption_FailsWithUsage()
    {
        var (exit, _, stderr) = await SearchorchProcess.RunAsync("generate", "--condition", "3");

        Assert.NotEqual(0, exit);
        Assert.Contains("--model", stderr);
    }

    [Theory]
    [InlineData("7", 3, new[] { "7", "7", "7" })]
    [InlineData("1, 2", 3, new[] { "1", "2", "1" })]
    [InlineData("all", 4, new[] { "a", "b", "c", "a" })]
    public void ExpandConditions_Forms_CycleOverSamples(string value, int samples, string[] expected)
    {
        Assert.Equal(expected, GenerateCommand.ExpandConditions(value, ["a", "b", "c"], samples));
    }
}
