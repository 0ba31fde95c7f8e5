using SearchOrchestrator.Core.Tests.TestDoubles;
using SearchOrchestrator.Scheduling;
using SearchOrchestrator.Search;
using SearchOrchestrator.Strategies;

namespace SearchOrchestrator.Core.Tests.Search;

/// <summary>Lookahead scoring: previews of j deterministic steps, counted as preview NFE, the nodes unchanged.</summary>
public sealed class NodePreviewsTests
{
    private static SearchRequest Request(ISearchStrategy strategy, int steps = 12, ulong seed = 5, double eta = 0.5) => new()
    {
        Model = "gaussian-data",
        Condition = "1",
        Steps = steps,
        Eta = eta,
        Seed = seed,
        Strategy = strategy,
        Verifiers = ["mean"],
    };

    private static SearchEngine Engine(BatchingOptions? batching = null) =>
        new(new FakeModels(new GaussianDataDenoiser(new(0, 1)), new MeanVerifier()), batching);

    [Fact]
    public async Task RunAsync_BfsWithThreePreviewSteps_CountsEveryPreviewStepExactly()
    {
        await using var engine = Engine();

        // 4 particles evaluated at steps 4 and 10 of 12: 4·3 + 4·min(3, 2) preview NFE on top of 4·12 steps.
        var result = await engine.RunAsync(Request(new BfsStrategy(4, [4, 10], BfsMode.Prune, Width: 2, PreviewSteps: 3)));

        Assert.Equal(20, result.Cost.PreviewNfe);
        Assert.Equal(48 + 20, result.Cost.Nfe);
        Assert.Equal(12, result.Cost.VerifierCalls);
    }

    [Fact]
    public async Task RunAsync_RequestPreviewSteps_IsTheDefaultOfAStrategyThatSetsNone()
    {
        await using var engine = Engine();

        var fromRequest = await engine.RunAsync(Request(new FkSteeringStrategy(3, FkPotential.Max, 10, 4, false)) with { PreviewSteps = 3 });
        var fromStrategy = await engine.RunAsync(Request(new FkSteeringStrategy(3, FkPotential.Max, 10, 4, false, PreviewSteps: 3)));

        Assert.Equal(3 * (3 + 3), fromRequest.Cost.PreviewNfe); // resampling at steps 4 and 8 of 12
        Assert.Equal(fromStrategy.Cost.PreviewNfe, fromRequest.Cost.PreviewNfe);
        Assert.Equal(fromStrategy.Candidates.Select(c => c.Sample), fromRequest.Candidates.Select(c => c.Sample));
    }

    [Fact]
    public async Task RunAsync_RequestPreviewSteps_OverridesAStrategysTunedDefaultButNotItsOwnValue()
    {
        await using var engine = Engine();
        var tuned = new BfsStrategy(4, [4, 10], BfsMode.Prune, Width: 2); // preview_steps unset: the request's, else 3

        var byDefault = await engine.RunAsync(Request(tuned));
        var raw = await engine.RunAsync(Request(tuned) with { PreviewSteps = 1 });
        var own = await engine.RunAsync(Request(tuned with { PreviewSteps = 3 }) with { PreviewSteps = 1 });

        // 4 particles evaluated at steps 4 and 10 of 12: 4·3 + 4·min(3, 2) preview NFE with j = 3.
        Assert.Equal((20L, 0L, 20L), (byDefault.Cost.PreviewNfe, raw.Cost.PreviewNfe, own.Cost.PreviewNfe));
        Assert.Equal(tuned.Plan(Request(tuned).ToPlanContext()).PreviewNfe, NfeRange.Exactly(20));
        Assert.Equal(tuned.Plan((Request(tuned) with { PreviewSteps = 1 }).ToPlanContext()).PreviewNfe, NfeRange.Exactly(0));
    }

    [Fact]
    public async Task RunAsync_OnePreviewStep_IsTodaysScoringOfTheRawPrediction()
    {
        await using var engine = Engine();
        var strategy = new BfsStrategy(4, [3, 6], Temperature: 0.05);

        var plain = await engine.RunAsync(Request(strategy) with { Candidates = 4, PreviewSteps = 1 });
        var one = await engine.RunAsync(Request(strategy with { PreviewSteps = 1 }) with { Candidates = 4, PreviewSteps = 1 });

        Assert.Equal(0, one.Cost.PreviewNfe);
        Assert.Equal(plain.Cost.Nfe, one.Cost.Nfe);
        Assert.Equal(plain.Candidates.Select(c => c.Sample), one.Candidates.Select(c => c.Sample));
        Assert.Equal(plain.Candidates.Select(c => c.Score), one.Candidates.Select(c => c.Score));
    }

    [Fact]
    public async Task RunAsync_PreviewedNodes_AreNotChangedByTheirPreviews()
    {
        await using var engine = Engine();
        // A threshold no score falls below: DFS never backtracks, so the previews are the only difference.
        var strategy = new DfsStrategy([3, 6, 9], -1e30, 2, 4, PreviewSteps: 1);

        var plain = await engine.RunAsync(Request(strategy));
        var previewed = await engine.RunAsync(Request(strategy with { PreviewSteps = 4 }));

        Assert.Equal(4 + 4 + 3, previewed.Cost.PreviewNfe);
        Assert.Equal(plain.Cost.Nfe + 11, previewed.Cost.Nfe);
        Assert.Equal(plain.Cost.NfeIndependent + 11, previewed.Cost.NfeIndependent);
        Assert.Equal(plain.Candidates.Single().Sample, previewed.Candidates.Single().Sample);
    }

    [Fact]
    public async Task RunAsync_PreviewsAloneOrAmongOtherSearchesInSmallOrLargeBatches_GiveIdenticalResults()
    {
        var request = Request(new SearchOverPathsStrategy(2, 2, 4, 2, 4, PreviewSteps: 3)) with { Candidates = 2 };
        SearchResult alone;
        await using (var engine = Engine(new BatchingOptions { MaxBatchSize = 2 }))
        {
            alone = await engine.RunAsync(request);
        }

        await using (var engine = Engine(new BatchingOptions { MaxBatchSize = 16 }))
        {
            var others = Enumerable.Range(0, 15).Select(i => engine.RunAsync(request with { Seed = (ulong)(100 + i) }));
            var together = engine.RunAsync(request);
            await Task.WhenAll([.. others, together]);
            var result = await together;

            Assert.True(result.Cost.MeanBatchSize > 2, $"searches should share batches (mean {result.Cost.MeanBatchSize})");
            Assert.Equal(alone.Cost.PreviewNfe, result.Cost.PreviewNfe);
            Assert.Equal(alone.Candidates.Select(c => c.Sample), result.Candidates.Select(c => c.Sample));
            Assert.Equal(alone.Candidates.Select(c => c.Score), result.Candidates.Select(c => c.Score));
        }
    }

    [Fact]
    public async Task RunAsync_BudgetTooSmallForAPreview_LeavesTheNodeUnscoredAndStaysWithinIt()
    {
        await using var engine = Engine();

        // 2 particles to step 8 (16 NFE), then previews of 4 steps each: the budget of 20 covers one.
        var result = await engine.RunAsync(Request(new BfsStrategy(2, [8], PreviewSteps: 4)) with { Budget = new SearchBudget { MaxNfe = 20 } });

        Assert.Equal(4, result.Cost.PreviewNfe);
        Assert.InRange(result.Cost.Nfe, 16, 20);
        Assert.True(result.BudgetLimited);
    }
}
