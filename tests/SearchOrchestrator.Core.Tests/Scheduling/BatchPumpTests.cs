using System.Collections.Concurrent;
using SearchOrchestrator.Scheduling;

namespace SearchOrchestrator.Core.Tests.Scheduling;

public sealed class BatchPumpTests
{
    [Fact]
    public async Task SubmitAsync_FourProducersOnTwoIdleLanes_SplitsThemTwoAndTwo()
    {
        // Four producers queue at once: one lane forming a batch of all four would leave the other instance idle.
        await using var pump = new RecordingPump(lanes: 2, expectedItems: 4);

        await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => pump.RunAsync()));

        Assert.Equal([2, 2], pump.BatchSizes.OrderBy(s => s));
    }

    [Fact]
    public async Task SubmitAsync_FourProducersOnOneLane_RunsThemAsOneBatch()
    {
        await using var pump = new RecordingPump(lanes: 1, expectedItems: 4);

        await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => pump.RunAsync()));

        Assert.Equal([4], pump.BatchSizes);
    }

    private sealed class Item() : BatchWork(1, CancellationToken.None);

    /// <summary>A pump whose queue delay is a minute, so a batch closes only when it holds its share of the producers.</summary>
    private sealed class RecordingPump(int lanes, int expectedItems)
        : BatchPump<Item>("test", new BatchingOptions { MaxQueueDelay = TimeSpan.FromSeconds(60) }, TimeProvider.System, lanes)
    {
        public ConcurrentQueue<int> BatchSizes { get; } = new();

        protected override int ExpectedItems => expectedItems;

        public Task<BatchTiming> RunAsync() => SubmitAsync(new Item());

        protected override Task ExecuteAsync(IReadOnlyList<Item> batch, int lane, CancellationToken passCancellation)
        {
            BatchSizes.Enqueue(batch.Count);
            return Task.CompletedTask;
        }
    }
}
