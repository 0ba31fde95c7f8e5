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
}
