using SearchOrchestrator.Workers;

namespace SearchOrchestrator.Core.Tests.Workers;

public sealed class WorkerOptionsTests
{
    [Fact]
    public void Validate_Defaults_AreValid() => Assert.Empty(new WorkerOptions().Validate());

    [Fact]
    public void Validate_EveryBadSetting_IsNamed()
    {
        var failures = new WorkerOptions
        {
            Mode = "sticky",
            Endpoints = ["gpu-3:50061"],
            MoveMargin = 1.5,
            CallTimeout = TimeSpan.Zero,
            MaxRetries = -1,
            MaxConsecutiveFailures = 0,
            ProbeSizes = [1024],
        }.Validate();

        Assert.Equal(7, failures.Count);
        foreach (var setting in new[] { "Workers:Mode", "Workers:Endpoints", "Workers:MoveMargin", "Workers:CallTimeout", "Workers:MaxRetries", "Workers:MaxConsecutiveFailures", "Workers:ProbeSizes" })
        {
            Assert.Contains(failures, f => f.StartsWith(setting, StringComparison.Ordinal));
        }
    }

    [Theory]
    [InlineData("http://10.0.0.5:50061", true)]
    [InlineData("http://worker-0:50061", true)]
    [InlineData("http://127.0.0.1:50061", false)]
    [InlineData("http://localhost:50061", false)]
    [InlineData("https://10.0.0.5:50061", false)]
    public void Validate_SecretToAPlaintextRemoteEndpoint_IsRefused(string endpoint, bool refused)
    {
        var failures = new WorkerOptions { Endpoints = [endpoint], Secret = "s3cret" }.Validate();

        Assert.Equal(refused ? [$"Workers:Endpoints: {endpoint} is plaintext beyond this machine, so Workers:Secret would cross the network in the clear; use https:// (see README, TLS with a private CA)."] : [], failures);
    }

    [Fact]
    public async Task JoinAsync_SecretToAPlaintextRemoteAddress_IsRefusedBeforeConnecting()
    {
        var connected = false;
        var pool = new WorkerPool((_, _) => { connected = true; throw new InvalidOperationException("must not connect"); }, _ => null, new WorkerOptions { Secret = "s3cret" });

        var ex = await Assert.ThrowsAsync<WorkerRefusedException>(() => pool.JoinAsync("http://10.1.2.3:50061"));

        Assert.False(connected);
        Assert.Contains("plaintext beyond this machine", ex.Message, StringComparison.Ordinal);
    }
}
