using Microsoft.Extensions.Time.Testing;
using SearchOrchestrator.Links;
using SearchOrchestrator.Scheduling;
using SearchOrchestrator.Workers;

namespace SearchOrchestrator.Core.Tests.Workers;

public sealed class WorkerPoolTests
{
    private static WorkerPool NewPool(TimeProvider? time = null) =>
        new((endpoint, _) => throw new InvalidOperationException($"no worker at {endpoint} in this test"), _ => null, new WorkerOptions(), time);

    [Fact]
    public async Task Add_StatelessBackends_HostingListsThoseThatRunTheModel()
    {
        await using var pool = NewPool();
        var a = new FakeStatelessBackend("http://b:8001", "counting");
        var b = new FakeStatelessBackend("http://a:8001", "other");

        var added = pool.Add(a) && pool.Add(b);
        var again = pool.Add(new FakeStatelessBackend("http://b:8001", "counting"));

        Assert.True(added);
        Assert.False(again);
        Assert.Equal([a], pool.Hosting("counting"));
        Assert.Equal(["http://a:8001", "http://b:8001"], pool.StatelessBackends.Select(s => s.Name));
        Assert.True(pool.Contains("http://a:8001"));
    }

    [Fact]
    public async Task LeaveAsync_StatelessBackend_RemovesAndDisposesIt()
    {
        await using var pool = NewPool();
        var backend = new FakeStatelessBackend("http://b:8001", "counting");
        pool.Add(backend);

        await pool.LeaveAsync(backend.Name);

        Assert.Empty(pool.StatelessBackends);
        Assert.True(backend.Disposed);
    }

    [Fact]
    public async Task MaintainAsync_StatelessBackendOutOfRotation_IsHealthCheckedEachInterval()
    {
        var time = new FakeTimeProvider();
        await using var pool = NewPool(time);
        var down = new FakeStatelessBackend("http://down:8001", "counting") { IsAvailable = false };
        var up = new FakeStatelessBackend("http://up:8001", "counting");
        pool.Add(down);
        pool.Add(up);
        using var stop = new CancellationTokenSource();
        var maintaining = pool.MaintainAsync(stop.Token);

        time.Advance(pool.Options.HealthCheckInterval);
        await down.Checked.Task;
        await stop.CancelAsync();
        try
        {
            await maintaining;
        }
        catch (OperationCanceledException)
        {
            // Stopped while waiting for the next interval.
        }

        Assert.True(down.IsAvailable);
        Assert.False(up.Checked.Task.IsCompleted); // in rotation: not checked
    }

    private sealed class FakeStatelessBackend(string name, string model) : IStatelessBackend
    {
        public TaskCompletionSource Checked { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public bool Disposed { get; private set; }

        public string Name => name;

        public string Kind => BackendKinds.KServe;

        public bool IsAvailable { get; set; } = true;

        public string? LastFailure => null;

        public int QueuedRows => 0;

        public int MaxBatchSize => 8;

        public ComputeCostModel Compute { get; } = new(TimeSpan.FromMilliseconds(1), TimeSpan.FromMilliseconds(1));

        public LinkCostModel? Link { get; } = new(name);

        public StepTraffic StepTraffic => StepTraffic.Network;

        public IResidentStates? ResidentStates => null;

        public bool Hosts(string m) => m == model;

        public Task<bool> CheckHealthAsync(CancellationToken cancellationToken = default)
        {
            IsAvailable = true;
            Checked.TrySetResult();
            return Task.FromResult(true);
        }

        public Task<StepOutcome> StepAsync(StepRequest step, TrajectorySettings settings, CancellationToken cancellationToken = default) => throw new NotSupportedException();

        public ValueTask DisposeAsync()
        {
            Disposed = true;
            return ValueTask.CompletedTask;
        }
    }
}
