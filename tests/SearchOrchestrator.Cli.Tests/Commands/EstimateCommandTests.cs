namespace SearchOrchestrator.Cli.Tests.Commands;

public sealed class EstimateCommandTests : IDisposable
{
    private readonly DirectoryInfo _output = Directory.CreateTempSubdirectory("searchorch-estimate-");

    public void Dispose() => _output.Delete(recursive: true);

    [Fact]
    public async Task Estimate_SharedPrefix_PrintsPlannedAndIndependentNfeAndTheMultiplier()
    {
        var (exit, stdout, stderr) = await SearchorchProcess.RunAsync("estimate", "--strategy", "shared_prefix", "--param", "k=4", "--param", "fork_at=25", "--eta", "0.5");

        Assert.True(exit == 0, stderr);
        Assert.Contains("shared_prefix, N = 50: exact", stdout, StringComparison.Ordinal);
        Assert.Matches(@"NFE\s+125\n", stdout.ReplaceLineEndings("\n"));
        Assert.Matches(@"independent NFE\s+200\n", stdout.ReplaceLineEndings("\n"));
        Assert.Contains("multiplier m     2.5 x one trajectory", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Estimate_Dfs_PrintsBounds()
    {
        var (exit, stdout, stderr) = await SearchorchProcess.RunAsync("estimate", "--strategy", "dfs", "--param", "max_backtracks=4", "--param", "recur_depth=5");

        Assert.True(exit == 0, stderr);
        Assert.Contains("bounds (adaptive)", stdout, StringComparison.Ordinal);
        // Defaults: evaluations at 10, 20, 30, 40, each previewed 3 steps (12 NFE), and each of 4 backtracks renoises 5 steps and previews again.
        Assert.Matches(@"NFE\s+62 \.\. 94\n", stdout.ReplaceLineEndings("\n"));
    }

    [Fact]
    public async Task Estimate_SameFlagsAsGenerate_PlansWhatGenerateSpends()
    {
        string[] flags = ["--model", "counting", "--condition", "5", "--steps", "10", "--strategy", "shared_prefix", "--param", "k=4", "--param", "fork_at=5"];

        var (_, estimated, _) = await SearchorchProcess.RunAsync(["estimate", .. flags]);
        var (exit, generated, stderr) = await SearchorchProcess.RunAsync(["generate", .. flags, "--out", Path.Combine(_output.FullName, "x.png")]);

        Assert.True(exit == 0, stderr);
        // η 0 by default on both: each fork renoises its children one step, so 10 + 3 × 5 + 4 renoise NFE.
        Assert.Matches(@"NFE\s+29\n", estimated.ReplaceLineEndings("\n"));
        Assert.Contains("NFE 29 (", generated, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Estimate_MaskedModel_PlansWithoutAPuzzle()
    {
        var (exit, stdout, stderr) = await SearchorchProcess.RunAsync("estimate", "--model", "sudoku", "--strategy", "dfs", "--steps", "16");

        Assert.True(exit == 0, stderr);
        Assert.Contains("dfs, N = 16: bounds (adaptive)", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Estimate_UnknownVerifier_FailsNamingIt()
    {
        var (exit, _, stderr) = await SearchorchProcess.RunAsync("estimate", "--strategy", "best_of_n", "--verifier", "no-such-verifier");

        Assert.Equal(2, exit);
        Assert.Contains("no-such-verifier", stderr, StringComparison.Ordinal);
    }
}
