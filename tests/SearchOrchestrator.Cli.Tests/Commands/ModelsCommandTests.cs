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
        Assert.Contains("--execution-provider must be one of auto, cpu, cuda, got 'tpu'.", stderr);
    }
}
