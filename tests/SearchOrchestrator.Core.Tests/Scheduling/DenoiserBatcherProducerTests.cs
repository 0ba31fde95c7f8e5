using SearchOrchestrator.Core.Tests.TestDoubles;
using SearchOrchestrator.Search;
using SearchOrchestrator.Scheduling;
using SearchOrchestrator.Strategies;

namespace SearchOrchestrator.Core.Tests.Scheduling;

public sealed class DenoiserBatcherProducerTests
{
    [Fact]
    public async Task RunAsync_LoneSearchWithAHugeQueueDelay_DoesNotWaitItOutOnEveryStep()
    {
        // With a 60 s queue delay a batcher that waited for more work on each of 20 steps would take 20 minutes: every
        // producer that could add to a batch (this search's four nodes) is already in it, so it runs at once.
        var denoiser = new GaussianDataDenoiser(new GaussianData(0.3, 0.7));
        await using var engine = new SearchEngine(new FakeModels([denoiser], []), new BatchingOptions { MaxQueueDelay = TimeSpan.FromSeconds(60) });

        var result = await engine.RunAsync(new SearchRequest { Model = "gaussian-data", Condition = "1", Steps = 20, Eta = 0.5, Strategy = new BestOfNStrategy(4), Candidates = 4 })
            .WaitAsync(TimeSpan.FromSeconds(50));

        Assert.Equal(80, result.Cost.Nfe);
        Assert.All(denoiser.BatchSizes, size => Assert.Equal(4, size)); // still batched: the four nodes step together
    }

    [Fact]
    public async Task RunAsync_LoneSearchOnTwoInstancesWithAHugeQueueDelay_SharesItsNodesAndDoesNotWait()
    {
        // Idle instances share the four stepping nodes (which lane takes which is up to the threads), and no batch waits
        // the 60 s delay for nodes another lane holds (a 20-step search that did would take 20 minutes).
        var first = new GaussianDataDenoiser(new GaussianData(0.3, 0.7));
        var second = new GaussianDataDenoiser(new GaussianData(0.3, 0.7));
        await using var engine = new SearchEngine(new FakeModels([new MultiInstanceDenoiser(first, second)], []), new BatchingOptions { MaxQueueDelay = TimeSpan.FromSeconds(60) });

        var result = await engine.RunAsync(new SearchRequest { Model = "gaussian-data", Condition = "1", Steps = 20, Eta = 0.5, Strategy = new BestOfNStrategy(4), Candidates = 4 })
            .WaitAsync(TimeSpan.FromSeconds(50));

        Assert.Equal(80, result.Cost.Nfe);
        Assert.Equal(80, first.BatchSizes.Concat(second.BatchSizes).Sum());
    }

    [Fact]
    public async Task RunAsync_TwoInstancesAndASecondSearchWhileTheFirstsPassRuns_RunsBothPassesAtOnce()
    {
        var first = new GatedDenoiser(new GaussianDataDenoiser(new GaussianData(0.3, 0.7)));
        var second = new GatedDenoiser(new GaussianDataDenoiser(new GaussianData(0.3, 0.7)));
        await using var engine = new SearchEngine(new FakeModels([new MultiInstanceDenoiser(first, second)], []), new BatchingOptions { MaxQueueDelay = TimeSpan.FromSeconds(60) });
        SearchRequest Request(ulong seed) => new() { Model = "gaussian-data", Condition = "1", Steps = 3, Eta = 0.5, Seed = seed, Strategy = new BestOfNStrategy(1) };

        var a = engine.RunAsync(Request(1));
        Assert.True(await first.WaitForPassAsync()); // the first search's step holds the first instance
        var b = engine.RunAsync(Request(2));

        // The second search's step does not wait for the first pass, nor out the queue delay: the free instance runs it.
        Assert.True(await second.WaitForPassAsync());
        first.Release(100);
        second.Release(100);
        var results = await Task.WhenAll(a, b);

        Assert.All(results, r => Assert.Equal(3, r.Cost.Nfe));
    }

    [Fact]
    public async Task RunAsync_LoneSearchOnTwoInstancesWithALonePassSession_RunsEveryStepOnIt()
    {
        var first = new GaussianDataDenoiser(new GaussianData(0.3, 0.7));
        var second = new GaussianDataDenoiser(new GaussianData(0.3, 0.7));
        var lone = new GaussianDataDenoiser(new GaussianData(0.3, 0.7));
        await using var engine = new SearchEngine(new FakeModels([new MultiInstanceDenoiser(first, second) { LonePass = lone }], []), new BatchingOptions { MaxQueueDelay = TimeSpan.FromSeconds(60) });

        var result = await engine.RunAsync(new SearchRequest { Model = "gaussian-data", Condition = "1", Steps = 20, Eta = 0.5, Strategy = new BestOfNStrategy(1) });

        Assert.Equal(20, result.Cost.Nfe);
        Assert.Equal(20, lone.BatchSizes.Count);
        Assert.Empty(first.BatchSizes);
        Assert.Empty(second.BatchSizes);
    }

    [Fact]
    public async Task RunAsync_SecondSearchWhileALonePassRuns_RunsOnAnInstance()
    {
        var instances = new GatedDenoiser(new GaussianDataDenoiser(new GaussianData(0.3, 0.7)));
        var lone = new GatedDenoiser(new GaussianDataDenoiser(new GaussianData(0.3, 0.7)));
        await using var engine = new SearchEngine(new FakeModels([new MultiInstanceDenoiser(instances, instances) { LonePass = lone }], []), new BatchingOptions { MaxQueueDelay = TimeSpan.FromSeconds(60) });
        SearchRequest Request(ulong seed) => new() { Model = "gaussian-data", Condition = "1", Steps = 3, Eta = 0.5, Seed = seed, Strategy = new BestOfNStrategy(1) };

        var a = engine.RunAsync(Request(1));
        Assert.True(await lone.WaitForPassAsync()); // alone: the first search's step runs with every thread

        // A second search queues while that pass runs: its step takes an instance's share, not the lone-pass session.
        var b = engine.RunAsync(Request(2));
        Assert.True(await instances.WaitForPassAsync());
        instances.Release(100);
        lone.Release(100);
        var results = await Task.WhenAll(a, b);

        Assert.All(results, r => Assert.Equal(3, r.Cost.Nfe));
    }
}
