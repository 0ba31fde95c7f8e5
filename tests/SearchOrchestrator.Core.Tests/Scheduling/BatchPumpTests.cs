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

    [Fact]
    public async Task SubmitAsync_FourProducersOnTwoIdleLanes_NoPassRunsAlone()
    {
        await using var pump = new RecordingPump(lanes: 2, expectedItems: 4);

        await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => pump.RunAsync()));

        Assert.Equal([false, false], pump.Alone);
    }

    [Fact]
    public async Task SubmitAsync_OneProducerOnTwoLanes_EveryPassRunsAlone()
    {
        await using var pump = new RecordingPump(lanes: 2, expectedItems: 1);

        for (var step = 0; step < 5; step++)
        {
            await pump.RunAsync();
        }

        Assert.Equal([true, true, true, true, true], pump.Alone);
    }

    [Fact]
    public async Task SubmitAsync_FourProducersOnOneLane_TheirOneBatchRunsAlone()
    {
        await using var pump = new RecordingPump(lanes: 1, expectedItems: 4);

        await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => pump.RunAsync()));

        Assert.Equal([true], pump.Alone);
    }

    [Theory]
    [InlineData(1, 0, 1, true)] // a lone search's step
    [InlineData(4, 0, 4, true)] // every stepping node of one search in one pass
    [InlineData(2, 0, 1, false)] // another producer may queue while it runs
    [InlineData(2, 1, 1, false)] // another lane is running a pass
    [InlineData(1, 1, 1, false)]
    [InlineData(int.MaxValue, 0, 64, false)] // producers unknown
    public void IsLonePass_ProducersRunningLanesAndBatch_DecidesAsTheRuleSays(int expectedItems, int runningLanes, int batchItems, bool alone)
    {
        Assert.Equal(alone, BatchPump<Item>.IsLonePass(expectedItems, runningLanes, batchItems));
    }

    private sealed class Item() : BatchWork(1, CancellationToken.None);

    /// <summary>A pump whose queue delay is a minute, so a batch closes only when it holds its share of the producers.</summary>
    private sealed class RecordingPump(int lanes, int expectedItems)
        : BatchPump<Item>("test", new BatchingOptions { MaxQueueDelay = TimeSpan.FromSeconds(60) }, TimeProvider.System, lanes)
    {
        public ConcurrentQueue<int> BatchSizes { get; } = new();

        /// <summary>Whether each pass ran alone, in the order they ran.</summary>
        public ConcurrentQueue<bool> Alone { get; } = new();

        protected override int ExpectedItems => expectedItems;

        public Task<BatchTiming> RunAsync() => SubmitAsync(new Item());

        protected override Task ExecuteAsync(IReadOnlyList<Item> batch, int lane, CancellationToken passCancellation)
        {
            BatchSizes.Enqueue(batch.Count);
            Alone.Enqueue(PassRunsAlone(lane));
            return Task.CompletedTask;
        }
    }
}
