using System.Text.Json;

namespace SearchOrchestrator.Cli.Tests.Commands;

/// <summary>The bench commands end to end on tiny grids: they run, and they write the report folder.</summary>
public sealed class BenchCommandTests : IDisposable
{
    private readonly DirectoryInfo _output = Directory.CreateTempSubdirectory("searchorch-bench-");

    public void Dispose() => _output.Delete(recursive: true);

    [Fact]
    public async Task Sharing_TinyGrid_WritesReportResultsAndPlotWithExactNfe()
    {
        var (exit, stdout, stderr) = await SearchorchProcess.RunAsync(
            "bench", "sharing", "--ks", "2,3", "--fractions", "0,0.5", "--steps", "10", "--seeds", "1", "--conditions", "3", "--quiet", "--out", _output.FullName);

        Assert.True(exit == 0, stderr);
        var folder = Assert.Single(_output.GetDirectories());
        Assert.Equal($"report: {Path.Combine(folder.FullName, "report.md")}", stdout.Trim());
        Assert.True(File.Exists(Path.Combine(folder.FullName, "sharing.png")));
        var report = await File.ReadAllTextAsync(Path.Combine(folder.FullName, "report.md"));
        Assert.Contains("| 3 | 5 | 0.50 | 2.000 | 2.000 | exact |", report, StringComparison.Ordinal);
        Assert.DoesNotContain("| NO |", report, StringComparison.Ordinal);

        using var json = JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(folder.FullName, "results.json")));
        var cells = json.RootElement.GetProperty("sharing").GetProperty("cells");
        Assert.Equal(4, cells.GetArrayLength());
        foreach (var cell in cells.EnumerateArray())
        {
            // m = k − (k−1)·s/N, measured exactly.
            var k = cell.GetProperty("k").GetInt32();
            var s = cell.GetProperty("forkStep").GetInt32();
            Assert.Equal(k - ((k - 1) * s / 10.0), cell.GetProperty("nfeRatio").GetDouble(), 12);
            Assert.True(cell.GetProperty("nfeExact").GetBoolean());
        }

        var shared = json.RootElement.GetProperty("sharing").GetProperty("searches").GetProperty("shared").GetProperty("k=3,s=5");
        Assert.Equal(20, shared[0].GetProperty("nfe").GetInt64());
        Assert.Equal(30, shared[0].GetProperty("nfeIndependent").GetInt64());
    }

    [Fact]
    public async Task Engine_TinyRun_ReportsBothBatchingModesAndThePlots()
    {
        var (exit, _, stderr) = await SearchorchProcess.RunAsync(
            "bench", "engine", "--batch-sizes", "1,4", "--concurrency", "2", "--seconds", "0.2", "--steps", "4", "--quiet", "--out", _output.FullName);

        Assert.True(exit == 0, stderr);
        var folder = Assert.Single(_output.GetDirectories());
        Assert.True(File.Exists(Path.Combine(folder.FullName, "engine-throughput.png")));
        Assert.True(File.Exists(Path.Combine(folder.FullName, "engine-batch.png")));
        using var json = JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(folder.FullName, "results.json")));
        var engine = json.RootElement.GetProperty("engine");
        Assert.Equal(2, engine.GetProperty("raw").GetArrayLength());
        var levels = engine.GetProperty("engine").EnumerateArray().ToList();
        Assert.Equal([true, false], levels.Select(l => l.GetProperty("batched").GetBoolean()));
        // Batching off caps a pass at one guided step: two rows.
        Assert.Equal(2, levels[1].GetProperty("maxBatchSize").GetInt32());
        Assert.All(levels, l => Assert.True(l.GetProperty("rows").GetInt64() > 0));
    }

    [Fact]
    public async Task Search_Rows_RunsOnlyTheGivenRowsWithExactNfe()
    {
        var (exit, _, stderr) = await SearchorchProcess.RunAsync(
            "bench", "search", "--steps", "10", "--seeds", "1", "--verifier", "count-verifier-t", "--row", "best_of_n n=2", "--row", "bfs particles=2 evaluate_at=5 mode=prune preview_steps=2", "--quiet", "--out", _output.FullName);

        Assert.True(exit == 0, stderr);
        var folder = Assert.Single(_output.GetDirectories());
        using var json = JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(folder.FullName, "results.json")));
        var search = json.RootElement.GetProperty("search");
        Assert.Equal("count-verifier-t", search.GetProperty("settings").GetProperty("verifier").GetString());
        var rows = search.GetProperty("rows").EnumerateArray().ToList();
        Assert.Equal(["best_of_n", "bfs"], rows.Select(r => r.GetProperty("strategy").GetString()));
        Assert.Equal(["n=2", "particles=2, evaluate_at=5, mode=prune, preview_steps=2"], rows.Select(r => r.GetProperty("parameters").GetString()));
        Assert.All(rows, r => Assert.Equal(9, r.GetProperty("searches").GetInt32()));
        Assert.Equal(20, rows[0].GetProperty("meanNfe").GetDouble());
        // Two particles for 10 steps, and one 2-step preview of each at step 5.
        Assert.Equal(24, rows[1].GetProperty("meanNfe").GetDouble());
    }

    [Fact]
    public async Task Search_SudokuRows_RunTheGivenSamplerWithinTheBudget()
    {
        var (exit, stdout, stderr) = await SearchorchProcess.RunAsync(
            "bench", "search", "--model", "sudoku", "--steps", "4", "--seeds", "1", "--out", _output.FullName,
            "--row", "best_of_n n=1",
            "--row", "dfs evaluate_at=1,2,3 threshold=-0.5 recur_depth=1 max_backtracks=32 judge=state escalate=true sampler.temperature=1 sampler.remask=random budget=3");

        Assert.True(exit == 0, stderr);
        var rows = stdout.Split('\n').Where(l => l.StartsWith("| best_of_n |", StringComparison.Ordinal) || l.StartsWith("| dfs |", StringComparison.Ordinal))
            .Select(l => l.Split('|', StringSplitOptions.TrimEntries)).ToList();
        Assert.Equal(2, rows.Count);
        Assert.Equal(("n=1", "T=0, confidence, remask confidence", "4.0"), (rows[0][2], rows[0][3], rows[0][4]));
        Assert.Equal("evaluate_at=1,2,3, threshold=-0.5, recur_depth=1, max_backtracks=32, judge=state, escalate=true, budget 3N", rows[1][2]);
        Assert.Equal("T=1, confidence, remask random", rows[1][3]);
        // Six puzzles, none allowed more than 3 × 4 NFE, each at least one pass.
        Assert.InRange(double.Parse(rows[1][4], System.Globalization.CultureInfo.InvariantCulture), 4, 12);
    }

    [Fact]
    public async Task Search_SudokuRowWithAnUnknownSamplerKey_FailsNamingTheKeys()
    {
        var (exit, _, stderr) = await SearchorchProcess.RunAsync("bench", "search", "--model", "sudoku", "--steps", "4", "--seeds", "1", "--row", "best_of_n n=1 sampler.heat=1", "--quiet", "--out", _output.FullName);

        Assert.Equal(2, exit);
        Assert.Contains("--row best_of_n: unknown sampler key 'sampler.heat'; use one of: sampler.temperature, sampler.top_k, sampler.top_p, sampler.threshold, sampler.policy, sampler.remask.", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Search_RowWithoutEquals_FailsNamingTheOption()
    {
        var (exit, _, stderr) = await SearchorchProcess.RunAsync("bench", "search", "--row", "bfs particles", "--quiet", "--out", _output.FullName);

        Assert.Equal(2, exit);
        Assert.Contains("--row must be '<strategy> key=value …' with each key once, got 'particles' in 'bfs particles'", stderr, StringComparison.Ordinal);
        Assert.Empty(_output.GetDirectories());
    }

    [Fact]
    public async Task Sharing_BranchCountBelowTwo_FailsNamingTheOption()
    {
        var (exit, _, stderr) = await SearchorchProcess.RunAsync("bench", "sharing", "--ks", "1", "--quiet", "--out", _output.FullName);

        Assert.Equal(2, exit);
        Assert.Contains("--ks must list branch counts of at least 2", stderr, StringComparison.Ordinal);
        Assert.Empty(_output.GetDirectories());
    }

    [Fact]
    public async Task Engine_NotANumber_FailsNamingTheOption()
    {
        var (exit, _, stderr) = await SearchorchProcess.RunAsync("bench", "engine", "--batch-sizes", "1,x", "--quiet", "--out", _output.FullName);

        Assert.Equal(2, exit);
        Assert.Contains("--batch-sizes must be comma-separated numbers, got '1,x'", stderr, StringComparison.Ordinal);
    }
}
