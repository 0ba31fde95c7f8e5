using SearchOrchestrator.Tests;

namespace SearchOrchestrator.Cli.Tests.Commands;

public sealed class ModelsCommandTests
{
    [Fact]
    public async Task Models_ShippedRepository_ListsEveryModelAsReady()
    {
        var (exit, stdout, stderr) = await SearchorchProcess.RunAsync("models", "--execution-provider", "cpu");

        Assert.True(exit == 0, stderr);
        Assert.Matches(@"counting\s+denoiser\s+ready\s+gaussian/epsilon, sample 1x24x24, conditions 1,2,3,4,5,6,7,8,9", stdout);
        Assert.Matches(@"count-verifier\s+verifier\s+ready\s+class-probability", stdout);
        Assert.Matches(@"shapes-t2i\s+pipeline\s+ready\s+diffusers layout, stages text_encoder float32, unet float32, vae_decoder float32", stdout);
        Assert.Contains("unet         sample:float32[-1,-1,-1,-1] timestep:float32[-1] encoder_hidden_states:float32[-1,-1,64] -> out_sample:float32[-1,4,-1,-1]", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Strategies_ListsEveryStrategyWithItsParameters()
    {
        var (exit, stdout, _) = await SearchorchProcess.RunAsync("strategies");

        Assert.Equal(0, exit);
        foreach (var name in new[] { "best_of_n", "shared_prefix", "bfs", "dfs", "search_over_paths", "zero_order", "fk_steering" })
        {
            Assert.Contains(name, stdout);
        }

        Assert.Contains("fork_at=auto|<step>", stdout);
    }

    [Fact]
    public async Task Strategies_WithPlugins_ListsThePlugInStrategyAfterTheBuiltIns()
    {
        var configuration = AppContext.BaseDirectory.Contains($"{Path.DirectorySeparatorChar}Release{Path.DirectorySeparatorChar}", StringComparison.Ordinal) ? "Release" : "Debug";
        var plugins = Path.Combine(RepositoryPaths.Root, "samples", "StrategyPlugin", "bin", configuration, "net10.0");

        var (exit, stdout, stderr) = await SearchorchProcess.RunAsync("strategies", "--plugins", plugins);

        Assert.True(exit == 0, stderr);
        Assert.Matches(@"fk_steering[\s\S]*successive_halving\s+n trajectories; the worse half pruned at each evaluation step\.", stdout);
        Assert.Matches(@"evaluate_at=N/4,N/2,3N/4\s+the steps at which the worse half is pruned", stdout);
    }

    [Fact]
    public async Task BenchServe_SmallRun_PrintsEveryConcurrencyLevelWithoutErrors()
    {
        var output = Directory.CreateTempSubdirectory("searchorch-bench-");
        var (exit, stdout, stderr) = await SearchorchProcess.RunAsync("bench", "serve", "--requests", "8", "--steps", "2", "--out", output.FullName);
        output.Delete(recursive: true);

        Assert.True(exit == 0, stderr);
        foreach (var concurrency in new[] { 1, 8, 64, 256 })
        {
            Assert.Matches($@"\n\| {concurrency} \| {Math.Max(8, concurrency)} \| [0-9.]+ \| [0-9.]+ ms \| [0-9.]+ ms \| 0 \| 0 \| [0-9.-]+ ms \|", stdout);
        }
    }

    [Theory]
    [InlineData("--Serving:MaxSteps", "0", "searchorch: error: Serving:MaxSteps must be at least 1, got 0.")]
    [InlineData("--urls", "http://0.0.0.0:0", "searchorch: error: http://0.0.0.0:0 would serve plaintext beyond this machine; use https:// with Serving:CertificatePath, or set Serving:AllowPlaintextRemote=true.")]
    public async Task Serve_BadSetting_FailsWithOneLineNamingIt(string key, string value, string expected)
    {
        var (exit, _, stderr) = await SearchorchProcess.RunAsync("serve", "--urls", "http://127.0.0.1:0", key, value);

        Assert.Equal(2, exit);
        Assert.Equal(expected, stderr.TrimEnd('\n'));
    }

    [Fact]
    public async Task Models_MissingFolder_FailsNamingIt()
    {
        var (exit, _, stderr) = await SearchorchProcess.RunAsync("models", "--models", "/nonexistent-models");

        Assert.Equal(2, exit);
        Assert.Equal("searchorch: error: --models: the folder '/nonexistent-models' does not exist.", stderr.TrimEnd('\n'));
    }

    [Fact]
    public async Task Models_UnknownExecutionProvider_FailsNamingIt()
    {
        var (exit, _, stderr) = await SearchorchProcess.RunAsync("models", "--execution-provider", "tpu");

        Assert.Equal(2, exit);
        Assert.Contains("--execution-provider must be one of auto, cpu, cuda, tensorrt, got 'tpu'.", stderr);
    }
}
