using Microsoft.Extensions.Logging;
using SearchOrchestrator.Workers;

namespace SearchOrchestrator.Core.Tests.Workers;

public sealed class BackendHealthTests
{
    [Fact]
    public void Failed_ConsecutiveFailuresReachTheLimit_LeavesTheRotationOnceAndLogsIt()
    {
        var log = new ListLogger();
        var health = new BackendHealth("my-kind", "memory://a", maxConsecutiveFailures: 2, log);

        health.Failed("first");
        Assert.True(health.InRotation);
        health.Failed("second");
        health.Failed("third");

        Assert.False(health.InRotation);
        Assert.Equal(3, health.ConsecutiveFailures);
        Assert.Equal("third", health.LastFailure);
        Assert.Equal(["my-kind backend memory://a left the rotation after 2 failure(s) in a row; the last: second"], log.Messages);
    }

    [Fact]
    public void Succeeded_BetweenFailures_StartsTheCountAgain()
    {
        var health = new BackendHealth("my-kind", "memory://a", maxConsecutiveFailures: 2);

        health.Failed("first");
        health.Succeeded();
        health.Failed("second");

        Assert.True(health.InRotation);
        Assert.Equal(1, health.ConsecutiveFailures);
    }

    [Fact]
    public void Failed_Fatal_LeavesAtOnce()
    {
        var health = new BackendHealth("my-kind", "memory://a", maxConsecutiveFailures: 5);

        health.Failed("connection refused", fatal: true);

        Assert.False(health.InRotation);
    }

    [Fact]
    public void Checked_HealthyAfterLeaving_ComesBackWithACleanCountAndLogsIt()
    {
        var log = new ListLogger();
        var health = new BackendHealth("my-kind", "memory://a", maxConsecutiveFailures: 1, log);
        health.Failed("down");

        Assert.False(health.Checked(healthy: false));
        Assert.False(health.InRotation);
        Assert.True(health.Checked(healthy: true));

        Assert.True(health.InRotation);
        Assert.Equal(0, health.ConsecutiveFailures);
        Assert.Equal("my-kind backend memory://a passed its health check and is back in rotation", log.Messages[^1]);
    }

    [Fact]
    public void Refuse_ThenHealthy_StaysOutForGood()
    {
        var health = new BackendHealth("my-kind", "memory://a", maxConsecutiveFailures: 3);

        health.Refuse("set MaxBatchSize to 4.");

        Assert.False(health.Checked(healthy: true));
        Assert.False(health.InRotation);
        Assert.Equal("set MaxBatchSize to 4.", health.Refusal);
    }

    private sealed class ListLogger : ILogger
    {
        public List<string> Messages { get; } = [];

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            Messages.Add(formatter(state, exception));
    }
}
