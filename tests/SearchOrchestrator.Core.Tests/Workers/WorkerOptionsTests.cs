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
}
