using SearchOrchestrator.Denoising;
using SearchOrchestrator.Scheduling;
using SearchOrchestrator.Search;
using SearchOrchestrator.Strategies;
using SearchOrchestrator.Verifiers;

namespace SearchOrchestrator.Onnx.Tests.Search;

/// <summary>The search engine on the shipped models, through the real ONNX Runtime path.</summary>
public sealed class EmbeddedModelSearchTests(SharedRepository shared) : IClassFixture<SharedRepository>
{
    private static SearchRequest Request(ISearchStrategy strategy, ulong seed = 1, int steps = 20) => new()
    {
        Model = "counting",
        Condition = "4",
        Steps = steps,
        Guidance = 2,
        Eta = 0.5,
        Seed = seed,
        Strategy = strategy,
        Verifiers = ["count-verifier"],
    };

    [Fact]
    public async Task RunAsync_AloneOrAmong31ConcurrentSearches_GivesTheSameCandidatesTo1e5()
    {
        var request = Request(new BfsStrategy(4, [8, 14])) with { Candidates = 4 };
        float[][] alone;
        await using (var engine = new SearchEngine(shared.Repository))
        {
            alone = [.. (await engine.RunAsync(request)).Candidates.Select(c => c.Sample)];
        }

        await using (var engine = new SearchEngine(shared.Repository, new BatchingOptions { MaxBatchSize = 48 }))
        {
            var others = Enumerable.Range(0, 31).Select(i => engine.RunAsync(request with { Seed = (ulong)(50 + i), Condition = ((i % 9) + 1).ToString() }));
            var mine = engine.RunAsync(request);
            await Task.WhenAll([.. others, mine]);
            var result = await mine;

            Assert.True(result.Cost.MeanBatchSize > 8, $"the searches should share batches (mean {result.Cost.MeanBatchSize:0.0} rows)");
            Assert.Equal(alone.Length, result.Candidates.Count);
            for (var c = 0; c < alone.Length; c++)
            {
                var together = result.Candidates[c].Sample;
                Assert.Equal(alone[c].Length, together.Length);
                for (var k = 0; k < together.Length; k++)
                {
                    Assert.True(Math.Abs(alone[c][k] - together[k]) <= 1e-5, $"candidate {c} element {k}: {alone[c][k]} alone, {together[k]} together");
                }
            }
        }
    }

    public static TheoryData<string> Strategies() => [.. StrategyNames.All];

    [Theory]
    [MemberData(nameof(Strategies))]
    public async Task RunAsync_EveryStrategyOnTheEmbeddedModels_ReturnsAScoredImage(string name)
    {
        await using var engine = new SearchEngine(new ModelCatalog(shared.Repository, [new ObjectCounter()]));
        var parameters = name == StrategyNames.SharedPrefix ? new Dictionary<string, string> { ["fork_at"] = "6" } : [];

        var result = await engine.RunAsync(Request(StrategyCatalog.BuiltIn.Create(name, parameters, 12), steps: 12) with { Verifiers = ["count-verifier", "object-counter"] });

        var best = Assert.Single(result.Candidates);
        Assert.True(best.Complete);
        Assert.Equal(24 * 24, best.Sample.Length);
        Assert.InRange(best.Scores["count-verifier"], 0f, 1f);
        Assert.True(best.Scores["object-counter"] <= 0);
        Assert.True(result.Cost.Nfe >= 12);
    }

    [Fact]
    public async Task PredictAsync_CancelledDuringALongPass_TerminatesIt()
    {
        var denoiser = shared.Repository.GetDenoiser("counting");
        const int batch = 1024;
        var elements = denoiser.Description.SampleShape.ElementCount;
        using var cancellation = new CancellationTokenSource();

        // The pass blocks its thread, as in the batcher's pump: give it a thread of its own, so the pool stays free to fire the cancellation.
        var pass = Task.Factory.StartNew(
            () => denoiser.PredictAsync(new DenoiserBatch(batch, new float[batch * elements], new float[batch], new long[batch]), new float[batch * elements], cancellation.Token),
            CancellationToken.None,
            TaskCreationOptions.LongRunning,
            TaskScheduler.Default).Unwrap();
        // A pass over 1024 samples takes on the order of a second; cancel while it runs.
        cancellation.CancelAfter(TimeSpan.FromMilliseconds(50));

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => pass);
    }
}
