using System.Buffers.Binary;
using SearchOrchestrator.Cli.Commands;
using SearchOrchestrator.Tests;

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
    public async Task Generate_PipelinePrompt_WritesAnRgbPngAndPrintsTheStageCalls()
    {
        var path = Path.Combine(_output.FullName, "circles.png");

        var (exit, stdout, stderr) = await SearchorchProcess.RunAsync("generate", "--model", "shapes-t2i", "--prompt", "two red circles", "--negative-prompt", "blue", "--steps", "4", "--guidance", "3", "--eta", "0.5", "--strategy", "best_of_n", "--param", "n=2", "--verifier", "composition-judge", "--out", path);

        Assert.True(exit == 0, stderr);
        Assert.Equal((8 + (32 * 8) + 8, 8 + (32 * 8) + 8), PngSize(path));
        Assert.Equal(2, File.ReadAllBytes(path)[25]); // IHDR colour type 2: RGB
        Assert.Contains("for prompt 'two red circles' (negative 'blue')", stdout);
        Assert.Contains("NFE 8 (independent runs: 8, saving 0.0 %); encoder calls 2 (cache hits 0), decoder calls 2, verifier calls 2", stdout);
    }

    [Fact]
    public async Task Generate_CompareTwoPrompts_WritesATwoRowCaptionedGridAndTheJudgesVerdicts()
    {
        var path = Path.Combine(_output.FullName, "compare.png");

        var (exit, stdout, stderr) = await SearchorchProcess.RunAsync("generate", "--model", "shapes-t2i", "--prompt", "two red circles", "--prompt", "one blue square and three green triangles", "--compare", "--steps", "4", "--guidance", "3", "--strategy", "best_of_n", "--param", "n=2", "--verifier", "composition-judge", "--out", path);

        Assert.True(exit == 0, stderr);
        var (width, height) = PngSize(path);
        Assert.Equal(8 + (2 * ((32 * 8) + 8)), width);
        Assert.Equal(8 + (2 * ((3 * 19) - 4 + 8 + (32 * 8) + 8)), height); // every tile: three caption lines (the longer prompt wraps once) above the image
        Assert.Contains("for 2 prompts, 4 DDIM steps", stdout);
        Assert.Matches(@"\n(match|off by \d+)\s+(match|off by \d+)\s+-?\d\.\d{3}\s+8  'two red circles'\n", stdout);
        Assert.Matches(@"prompt matched: single shots [0-2]/2, searched [0-2]/2 \(compositional judge\)", stdout);
        Assert.Contains("NFE: single shots 8, searched 16 (2.00x)", stdout);
    }

    [Fact]
    public async Task Generate_SeveralPromptsWithoutCompare_PrintsOneLineNamingPrompt()
    {
        var (exit, _, stderr) = await SearchorchProcess.RunAsync("generate", "--model", "shapes-t2i", "--prompt", "two red circles", "--prompt", "one blue square", "--out", Path.Combine(_output.FullName, "x.png"));

        Assert.Equal(2, exit);
        Assert.Equal("searchorch: error: --prompt is given 2 times; several prompts need --compare (a single shot and a searched result for each).", stderr.Trim());
        Assert.Empty(_output.GetFiles());
    }

    [Fact]
    public async Task Generate_ConditionForAPipeline_SaysToUsePrompt()
    {
        var (exit, _, stderr) = await SearchorchProcess.RunAsync("generate", "--model", "shapes-t2i", "--condition", "7", "--out", Path.Combine(_output.FullName, "x.png"));

        Assert.NotEqual(0, exit);
        Assert.Contains("--condition is for class-conditioned models; a text-to-image pipeline takes --prompt.", stderr);
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
    [InlineData("--model nope", "searchorch: error: no denoiser named 'nope' in the model repository; available: counting, sudoku.")]
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
    public async Task Generate_SharedPrefixSearch_PrintsTheCostAccountAndCandidates()
    {
        var path = Path.Combine(_output.FullName, "search.png");

        var (exit, stdout, stderr) = await SearchorchProcess.RunAsync("generate", "--model", "counting", "--condition", "5", "--steps", "10", "--eta", "0.5",
            "--strategy", "shared_prefix", "--param", "k=4", "--param", "fork_at=5", "--samples", "2", "--out", path);

        Assert.True(exit == 0, stderr);
        Assert.Contains("NFE 25 (independent runs: 40, saving 37.5 %), 2.50x one trajectory", stdout);
        Assert.Contains("verifier calls 4;", stdout);
        Assert.Contains("fork step 5", stdout);
        Assert.Matches(@"\n\s+1\s+0/\d\s+10\s+[01]\.\d{3}\s+\d+\n\s+2\s+0/\d\s+10", stdout);
        Assert.Equal((8 + (2 * (192 + 8)), 8 + 15 + 8 + 192 + 8), PngSize(path));
    }

    [Theory]
    [InlineData("--strategy beam", "searchorch: error: unknown strategy 'beam'; use one of: best_of_n, shared_prefix, bfs, dfs, search_over_paths, zero_order, fk_steering.")]
    [InlineData("--param evaluate_at=30", "searchorch: error: bfs: evaluate_at must be strictly increasing steps between 1 and 9, got [30].")]
    [InlineData("--param depth=3", "searchorch: error: bfs has no parameter 'depth'; its parameters are: particles=3, evaluate_at=<steps> (default every N/5), mode=resample|prune, temperature=0.1, width=1, preview_steps=the request's, else 3, renoise=0 (the request's fork_renoise_steps under η = 0).")]
    [InlineData("--verifier none", "searchorch: error: strategy 'bfs' needs at least one verifier to score with.")]
    [InlineData("--verifier nope", "searchorch: error: no verifier named 'nope' in the model repository; available: count-verifier, count-verifier-t, shapes-t2i-verifier.")]
    public async Task Generate_BadSearchArgument_PrintsOneLineNamingIt(string change, string expected)
    {
        var args = new List<string> { "generate", "--model", "counting", "--condition", "5", "--steps", "10", "--strategy", "bfs", "--out", Path.Combine(_output.FullName, "x.png") };
        var parts = change.Split(' ');
        var at = args.IndexOf(parts[0]);
        if (at >= 0)
        {
            args[at + 1] = parts[1];
        }
        else
        {
            args.AddRange(parts);
        }

        var (exit, _, stderr) = await SearchorchProcess.RunAsync([.. args]);

        Assert.Equal(2, exit);
        Assert.Equal(expected, stderr.TrimEnd('\n'));
        Assert.Empty(_output.GetFiles());
    }

    [Fact]
    public async Task Generate_SudokuPuzzleWithDfs_PrintsTheGridViolationsAndCostAccount()
    {
        const string puzzle = "53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79";

        var (exit, stdout, stderr) = await SearchorchProcess.RunAsync(
            "generate", "--model", "sudoku", "--puzzle", puzzle, "--strategy", "dfs", "--steps", "16", "--sampler", "remask=random",
            "--param", "evaluate_at=8,12,15", "--param", "threshold=-0.5", "--param", "recur_depth=4", "--param", "max_backtracks=8", "--param", "preview_steps=1", "--seed", "1");

        Assert.True(exit == 0, stderr + stdout);
        Assert.Contains("5 3 . | . 7 . | . . .", stdout);
        Assert.Contains("0 violated constraints, solved", stdout);
        Assert.Contains("534678912672195348198342567859761423426853791713924856961537284287419635345286179", stdout);
        Assert.Contains("NFE 48 (independent runs: 132", stdout);
    }

    [Fact]
    public async Task Generate_TextModelPrompt_PrintsTheDecodedAnswerAndCostAccount()
    {
        var fixtures = Path.Combine(RepositoryPaths.Root, "tests", "SearchOrchestrator.Onnx.Tests", "Fixtures", "text");

        var (exit, stdout, stderr) = await SearchorchProcess.RunAsync(
            "generate", "--models", fixtures, "--model", "tiny-llada", "--prompt", "the cat sat", "--steps", "8", "--sampler", "temperature=0.7", "--seed", "2");

        Assert.True(exit == 0, stderr + stdout);
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.StartsWith("tiny-llada: search 'best_of_n' for a prompt of 3 tokens and an answer of 8, 8 unmasking steps", lines[0]);
        Assert.Matches("^candidate 1 \\(0, step 8/8\\): \".+\"$", lines[1]);
        Assert.StartsWith("NFE 8 (independent runs: 8, saving 0.0 %)", lines[2]);
    }

    [Fact]
    public async Task Generate_PromptForAnImageModel_PrintsOneLineNamingIt()
    {
        var (exit, _, stderr) = await SearchorchProcess.RunAsync("generate", "--model", "counting", "--prompt", "seven");

        Assert.NotEqual(0, exit);
        Assert.Equal("searchorch: error: model 'counting' takes a condition, not a prompt; prompt is for text-to-image pipelines and text models (a diffusion LLM with a tokenizer.json).", stderr.Trim());
    }

    [Theory]
    [InlineData("53..7", "searchorch: error: a Sudoku puzzle has exactly 81 characters (row by row, '.' or '0' for a blank), got 5.")]
    [InlineData("x3..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79", "searchorch: error: character 'x' at position 0 is not a digit 1-9 or a blank ('.' or '0').")]
    public async Task Generate_BadPuzzle_PrintsOneLineNamingIt(string puzzle, string expected)
    {
        var (exit, _, stderr) = await SearchorchProcess.RunAsync("generate", "--model", "sudoku", "--puzzle", puzzle);

        Assert.NotEqual(0, exit);
        Assert.Equal(expected, stderr.Trim());
    }

    [Fact]
    public async Task Generate_MissingRequiredOption_FailsWithOneUsageLine()
    {
        var (exit, stdout, stderr) = await SearchorchProcess.RunAsync("generate", "--condition", "3");

        Assert.Equal(2, exit);
        Assert.Equal("searchorch: error: Option '--model' is required. (see 'searchorch generate --help')", stderr.TrimEnd('\n'));
        Assert.Empty(stdout);
    }

    [Fact]
    public async Task Generate_Terminated_RemovesThePartialFileSaysSoAndExits130()
    {
        var path = Path.Combine(_output.FullName, "long.png");
        using var process = SearchorchProcess.Start("generate", "--model", "counting", "--condition", "all", "--samples", "256", "--steps", "400", "--out", path);

        // The header line is printed once the output is reserved and just before the samples start.
        Assert.StartsWith("counting: 256 sample(s)", await process.StandardOutput.ReadLineAsync());
        Assert.NotEmpty(_output.GetFiles(".long.png.*.tmp", new EnumerationOptions { AttributesToSkip = 0 }));
        SearchorchProcess.Terminate(process);
        var stderr = await process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();

        Assert.Equal(130, process.ExitCode);
        Assert.Equal($"searchorch: cancelled: the search stopped and {path} was not written", stderr.TrimEnd('\n'));
        Assert.Empty(_output.GetFiles("*", new EnumerationOptions { AttributesToSkip = 0 }));
    }

    [Theory]
    [InlineData("two red circles", 21, new[] { "two red circles" })]
    [InlineData("one blue square and three green triangles", 21, new[] { "one blue square and", "three green triangles" })]
    [InlineData("", 21, new[] { "" })]
    public void Wrap_Prompt_BreaksAtSpacesWithinTheWidth(string text, int width, string[] expected)
    {
        Assert.Equal(expected, PipelineGenerate.Wrap(text, width));
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
