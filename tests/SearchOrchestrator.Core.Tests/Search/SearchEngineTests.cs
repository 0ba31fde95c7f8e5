using SearchOrchestrator.Core.Tests.TestDoubles;
using SearchOrchestrator.Scheduling;
using SearchOrchestrator.Search;
using SearchOrchestrator.Strategies;

namespace SearchOrchestrator.Core.Tests.Search;

public sealed class SearchEngineTests
{
    private static SearchRequest Request(ISearchStrategy strategy, int steps = 10, ulong seed = 3, double eta = 0.5, params string[] verifiers) => new()
    {
        Model = "gaussian-data",
        Condition = "1",
        Steps = steps,
        Eta = eta,
        Seed = seed,
        Strategy = strategy,
        Verifiers = verifiers,
    };

    public static TheoryData<int, int, int> SharedPrefixGrid()
    {
        var grid = new TheoryData<int, int, int>();
        foreach (var k in new[] { 1, 2, 3, 4, 8 })
        {
            foreach (var n in new[] { 10, 50 })
            {
                foreach (var fraction in new[] { 0.0, 0.2, 0.5, 0.8 })
                {
                    grid.Add(k, (int)(fraction * n), n);
                }
            }
        }

        return grid;
    }

    [Theory]
    [MemberData(nameof(SharedPrefixGrid))]
    public async Task RunAsync_SharedPrefix_NfeOverNIsExactlyKMinusKMinusOneTimesSOverN(int k, int s, int n)
    {
        await using var engine = new SearchEngine(new FakeModels(new GaussianDataDenoiser(new(0, 1))));

        var result = await engine.RunAsync(Request(new SharedPrefixStrategy(k, s), steps: n) with { Candidates = k });

        // m = k − (k−1)·s/N, i.e. nfe = k·N − (k−1)·s, compared in integers so it is exact.
        Assert.Equal((k * n) - ((k - 1) * s), result.Cost.Nfe);
        Assert.Equal(k * n, result.Cost.NfeIndependent);
        Assert.Equal(k - ((k - 1) * (double)s / n), (double)result.Cost.Nfe / n, 12);
        Assert.Equal(k, result.Candidates.Count);
        Assert.All(result.Candidates, c => Assert.True(c.Complete));
        Assert.False(result.BudgetLimited);
    }

    [Fact]
    public async Task RunAsync_SameRequestAloneOrAmong31Others_ReturnsIdenticalCandidates()
    {
        var request = Request(new BfsStrategy(4, [3, 6]), verifiers: "mean") with { Candidates = 4 };
        float[][] alone;
        await using (var engine = new SearchEngine(new FakeModels(new GaussianDataDenoiser(new(0, 1)), new MeanVerifier())))
        {
            alone = [.. (await engine.RunAsync(request)).Candidates.Select(c => c.Sample)];
        }

        await using (var engine = new SearchEngine(new FakeModels(new GaussianDataDenoiser(new(0, 1)), new MeanVerifier()), new BatchingOptions { MaxBatchSize = 16 }))
        {
            var others = Enumerable.Range(0, 31).Select(i => engine.RunAsync(request with { Seed = (ulong)(100 + i) }));
            var together = engine.RunAsync(request);
            await Task.WhenAll([.. others, together]);
            var result = await together;

            Assert.True(result.Cost.MeanBatchSize > 4, $"searches should share batches (mean {result.Cost.MeanBatchSize})");
            Assert.Equal(alone, result.Candidates.Select(c => c.Sample));
        }
    }

    [Fact]
    public async Task RunAsync_TinyBatchesAndQueue_GiveTheSameResultAndDropNothing()
    {
        var request = Request(new BestOfNStrategy(5)) with { Candidates = 5, Guidance = 2 };
        await using var large = new SearchEngine(new FakeModels(new GaussianDataDenoiser(new(0, 1))));
        await using var tiny = new SearchEngine(new FakeModels(new GaussianDataDenoiser(new(0, 1))), new BatchingOptions { MaxBatchSize = 2, QueueCapacity = 1 });

        var reference = await large.RunAsync(request);
        var results = await Task.WhenAll(Enumerable.Range(0, 6).Select(_ => tiny.RunAsync(request)));

        Assert.All(results, r => Assert.Equal(reference.Candidates.Select(c => c.Sample), r.Candidates.Select(c => c.Sample)));
        Assert.All(results, r => Assert.Equal(50, r.Cost.Nfe));
    }

    [Fact]
    public async Task RunAsync_BudgetBelowThePlan_NeverExceedsItAndIsMarkedLimited()
    {
        await using var engine = new SearchEngine(new FakeModels(new GaussianDataDenoiser(new(0, 1)), new MeanVerifier()));

        var result = await engine.RunAsync(Request(new BestOfNStrategy(8), verifiers: "mean") with { Budget = new SearchBudget { MaxNfe = 35 }, Candidates = 8 });

        Assert.Equal(30, result.Cost.Nfe);
        Assert.True(result.BudgetLimited);
        Assert.Equal(3, result.Candidates.Count);
    }

    [Theory]
    [InlineData(StrategyNames.BestOfN)]
    [InlineData(StrategyNames.SharedPrefix)]
    [InlineData(StrategyNames.Bfs)]
    [InlineData(StrategyNames.Dfs)]
    [InlineData(StrategyNames.SearchOverPaths)]
    [InlineData(StrategyNames.ZeroOrder)]
    [InlineData(StrategyNames.FkSteering)]
    public async Task RunAsync_AnyStrategyUnderATightBudget_StaysWithinIt(string name)
    {
        await using var engine = new SearchEngine(new FakeModels(new GaussianDataDenoiser(new(0, 1)), new MeanVerifier()));
        var parameters = name == StrategyNames.SharedPrefix ? new Dictionary<string, string> { ["fork_at"] = "4" } : [];
        var strategy = StrategyCatalog.BuiltIn.Create(name, parameters, 20);

        var result = await engine.RunAsync(Request(strategy, steps: 20, verifiers: "mean") with { Budget = new SearchBudget { MaxNfe = 45, MaxVerifierCalls = 6 } });

        Assert.InRange(result.Cost.Nfe, 1, 45);
        Assert.InRange(result.Cost.VerifierCalls, 0, 6);
        Assert.NotEmpty(result.Candidates);
    }

    [Fact]
    public async Task RunAsync_UnknownModelOrVerifier_ThrowsNotFound()
    {
        await using var engine = new SearchEngine(new FakeModels(new GaussianDataDenoiser(new(0, 1)), new MeanVerifier()));

        await Assert.ThrowsAsync<ModelNotFoundException>(() => engine.RunAsync(Request(new BestOfNStrategy(1)) with { Model = "nope" }));
        await Assert.ThrowsAsync<ModelNotFoundException>(() => engine.RunAsync(Request(new BestOfNStrategy(1), verifiers: "nope")));
    }

    [Theory]
    [InlineData("verifiers")]
    [InlineData("strategy.evaluate_at")]
    [InlineData("candidates")]
    [InlineData("condition")]
    [InlineData("budget.max_nfe")]
    [InlineData("preview_steps")]
    [InlineData("strategy.preview_steps")]
    public async Task RunAsync_InvalidRequest_ThrowsNamingTheFieldBeforeAnyPass(string field)
    {
        var denoiser = new GaussianDataDenoiser(new(0, 1));
        await using var engine = new SearchEngine(new FakeModels(denoiser, new MeanVerifier()));
        var request = field switch
        {
            "verifiers" => Request(new BfsStrategy(2, [3])),
            "strategy.evaluate_at" => Request(new BfsStrategy(2, [3, 12]), verifiers: "mean"),
            "candidates" => Request(new BestOfNStrategy(1)) with { Candidates = 0 },
            "condition" => Request(new BestOfNStrategy(1)) with { Condition = "seven" },
            "preview_steps" => Request(new BfsStrategy(2, [3]), verifiers: "mean") with { PreviewSteps = 0 },
            "strategy.preview_steps" => Request(new BfsStrategy(2, [3], PreviewSteps: 0), verifiers: "mean"),
            _ => Request(new BestOfNStrategy(1)) with { Budget = new SearchBudget { MaxNfe = 0 } },
        };

        var ex = await Assert.ThrowsAsync<InvalidRequestException>(() => engine.RunAsync(request));

        Assert.Equal(field, ex.Argument);
        Assert.Equal(0, denoiser.Passes);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task RunAsync_VerifierThrowsOrReturnsNaN_FailsThatSearchOnlyNamingTheVerifier(bool returnNaN)
    {
        await using var engine = new SearchEngine(new FakeModels(new GaussianDataDenoiser(new(0, 1)), new MeanVerifier(), new BrokenVerifier("broken", returnNaN)));

        var failing = engine.RunAsync(Request(new BestOfNStrategy(2), verifiers: "broken"));
        var healthy = engine.RunAsync(Request(new BestOfNStrategy(2), verifiers: "mean"));

        var ex = await Assert.ThrowsAsync<VerifierFailedException>(() => failing);
        Assert.Equal("broken", ex.Verifier);
        Assert.Contains("verifier 'broken'", ex.Message);
        Assert.Single((await healthy).Candidates);
    }

    [Fact]
    public async Task RunAsync_CancelledMidSearch_StopsItAndLeavesOthersUntouched()
    {
        var gated = new GatedDenoiser(new GaussianDataDenoiser(new(0, 1)));
        await using var engine = new SearchEngine(new FakeModels(gated), new BatchingOptions { MaxBatchSize = 2 });
        using var cancellation = new CancellationTokenSource();

        var cancelled = engine.RunAsync(Request(new BestOfNStrategy(2)) with { Model = "gaussian-data" }, cancellation.Token);
        Assert.True(await gated.WaitForPassAsync());
        var other = engine.RunAsync(Request(new BestOfNStrategy(1), seed: 99));
        await cancellation.CancelAsync();
        gated.Release(1000);

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => cancelled);
        var result = await other;
        Assert.Equal(10, result.Cost.Nfe);
        Assert.True(result.Candidates[0].Complete);
    }
}
