using SearchOrchestrator.Links;
using SearchOrchestrator.Scheduling;
using SearchOrchestrator.Workers;

namespace SearchOrchestrator.Core.Tests.Workers;

public sealed class PlacementPolicyTests
{
    [Fact]
    public void Choose_FastWorkerBehindSlowLinkVersusSlowWorkerBehindFastLink_DependsOnBatchSize()
    {
        // Fast compute (0.5 ms per row) behind a 20 ms link; slow compute (3 ms per row) behind a 0.1 ms link.
        var fast = new FakeBackend("fast", perRow: 0.5e-3, latency: 20e-3, secondsPerByte: 1e-9);
        var slow = new FakeBackend("slow", perRow: 3e-3, latency: 0.1e-3, secondsPerByte: 1e-9);

        var small = PlacementPolicy.Choose([Estimate(fast, rows: 1), Estimate(slow, rows: 1)]);
        var large = PlacementPolicy.Choose([Estimate(fast, rows: 32), Estimate(slow, rows: 32)]);

        Assert.Same(slow, small.Backend);
        Assert.Same(fast, large.Backend);
    }

    [Fact]
    public void Estimate_StatelessBackend_ChargesTheLinkEveryStepAndResidentOnce()
    {
        var worker = new FakeBackend("w", perRow: 0, latency: 10e-3, secondsPerByte: 0);

        var stateless = PlacementPolicy.Estimate(worker, rows: 4, steps: 50, stepBytesPerRow: 1000, moveBytes: 0, resident: false);
        var resident = PlacementPolicy.Estimate(worker, rows: 4, steps: 50, stepBytesPerRow: 1000, moveBytes: 0, resident: true);

        Assert.Equal(0.5, stateless.Transfer.TotalSeconds, 9);
        Assert.Equal(0.01, resident.Transfer.TotalSeconds, 9);
    }

    [Fact]
    public void Estimate_QueuedWork_AddsTheTimeToDrainIt()
    {
        var busy = new FakeBackend("busy", perRow: 1e-3, latency: 0, secondsPerByte: 0) { Queued = 128 };

        var cost = PlacementPolicy.Estimate(busy, rows: 1, steps: 1, stepBytesPerRow: 0, moveBytes: 0, resident: false);

        // Two full passes of 64 rows (1 ms fixed + 64 ms) ahead of it.
        Assert.Equal(2 * 0.065, cost.Queue.TotalSeconds, 9);
    }

    [Fact]
    public void Choose_NothingAvailable_SaysWhatToChange()
    {
        var down = new FakeBackend("down", 0, 0, 0) { Available = false };

        var error = Assert.Throws<NoBackendException>(() => PlacementPolicy.Choose([Estimate(down, 1)]));

        Assert.Contains("Workers:UseLocal", error.Message, StringComparison.Ordinal);
    }

    private static BackendCost Estimate(IStepBackend backend, int rows) =>
        PlacementPolicy.Estimate(backend, rows, steps: 1, stepBytesPerRow: 27_648, moveBytes: 0, resident: false);

    private sealed class FakeBackend : IStepBackend
    {
        public FakeBackend(string name, double perRow, double latency, double secondsPerByte)
        {
            Name = name;
            Compute = new ComputeCostModel(TimeSpan.FromMilliseconds(1), TimeSpan.FromSeconds(perRow));
            Link = new LinkCostModel(name);
            // Two payload sizes fix the line exactly.
            Link.Record(new Transfer(0, 0, TimeSpan.FromSeconds(latency)));
            Link.Record(new Transfer(1_000_000, 0, TimeSpan.FromSeconds(latency + (secondsPerByte * 1_000_000))));
        }

        public string Name { get; }

        public bool Available { get; init; } = true;

        public bool IsAvailable => Available;

        public int Queued { get; init; }

        public int QueuedRows => Queued;

        public int MaxBatchSize => 64;

        public ComputeCostModel Compute { get; }

        public LinkCostModel? Link { get; }

        public StepTraffic StepTraffic => StepTraffic.Sampler;

        public IResidentStates? ResidentStates => null;

        public string? LastFailure => null;

        public Task<StepOutcome> StepAsync(StepRequest step, TrajectorySettings settings, CancellationToken cancellationToken = default) => throw new NotSupportedException();
    }
}
