using SearchOrchestrator.Core.Tests.TestDoubles;
using SearchOrchestrator.Tensors;
using SearchOrchestrator.Verifiers;
using SearchOrchestrator.Search;
using SearchOrchestrator.Strategies;

namespace SearchOrchestrator.Core.Tests.Strategies;

/// <summary>Shared checks every strategy must pass, run against the analytic Gaussian denoiser and a mean verifier.</summary>
public sealed class StrategyTests
{
    private static async Task<SearchResult> RunAsync(ISearchStrategy strategy, ulong seed = 11, double eta = 0.5, int candidates = 1, IVerifier? verifier = null, SearchBudget? budget = null)
    {
        verifier ??= new MeanVerifier();
        await using var engine = new SearchEngine(new FakeModels(new GaussianDataDenoiser(new(0, 1), elements: 4), verifier));
        return await engine.RunAsync(new SearchRequest
        {
            Model = "gaussian-data",
            Condition = "1",
            Steps = 20,
            Eta = eta,
            Seed = seed,
            Strategy = strategy,
            Verifiers = [verifier.Name],
            Candidates = candidates,
            Budget = budget ?? new(),
        });
    }

    private static Task<SearchResult> RunFlatAsync(ISearchStrategy strategy, SearchBudget budget) => RunAsync(strategy, verifier: new FlatVerifier(), budget: budget);

    public static TheoryData<string> Names() => [.. StrategyNames.All];

    private static ISearchStrategy Create(string name) =>
        StrategyCatalog.BuiltIn.Create(name, name == StrategyNames.SharedPrefix ? new Dictionary<string, string> { ["fork_at"] = "8" } : [], 20);

    [Theory]
    [MemberData(nameof(Names))]
    public async Task RunAsync_EachStrategy_ReturnsACompleteVerifiedCandidate(string name)
    {
        var result = await RunAsync(Create(name));

        var best = Assert.Single(result.Candidates);
        Assert.True(best.Complete);
        Assert.NotNull(best.Score);
        Assert.Equal(name, result.Strategy);
        Assert.False(result.BudgetLimited);
        Assert.True(result.Cost.Nfe >= 20);
    }

    [Theory]
    [MemberData(nameof(Names))]
    public async Task Plan_EachStrategy_BoundsWhatItSpends(string name)
    {
        var strategy = Create(name);

        var result = await RunAsync(strategy);
        var planned = strategy.Plan(new PlanContext(20, ForkRenoiseSteps: 0)).Nfe.Max; // η = 0.5: forks renoise nothing

        // Every strategy but dfs (whose backtracks depend on scores) spends exactly its plan.
        if (name == StrategyNames.Dfs)
        {
            Assert.InRange(result.Cost.Nfe, 20, planned);
        }
        else
        {
            Assert.Equal(planned, result.Cost.Nfe);
        }
    }

    [Theory]
    [MemberData(nameof(Names))]
    public async Task RunAsync_EachStrategyTwice_IsDeterministic(string name)
    {
        var first = await RunAsync(Create(name), eta: 0);
        var second = await RunAsync(Create(name), eta: 0);

        Assert.Equal(first.Candidates[0].Sample, second.Candidates[0].Sample);
        Assert.Equal(first.Cost.Nfe, second.Cost.Nfe);
    }

    [Theory]
    [InlineData(StrategyNames.BestOfN)]
    [InlineData(StrategyNames.Bfs)]
    [InlineData(StrategyNames.FkSteering)]
    [InlineData(StrategyNames.SearchOverPaths)]
    public async Task RunAsync_SearchStrategies_BeatASingleSampleOnAverage(string name)
    {
        var single = 0.0;
        var searched = 0.0;
        for (ulong seed = 0; seed < 12; seed++)
        {
            single += (await RunAsync(new BestOfNStrategy(1), seed)).Candidates[0].Score!.Value;
            searched += (await RunAsync(Create(name), seed)).Candidates[0].Score!.Value;
        }

        Assert.True(searched > single + 0.5, $"{name}: searched {searched / 12:0.000} vs single {single / 12:0.000} mean score");
    }

    [Fact]
    public async Task Dfs_LowScores_BacktrackAndKeepTheBestAttempt()
    {
        var result = await RunAsync(new DfsStrategy([5, 10], Threshold: 10, RecurDepth: 3, MaxBacktracks: 4, PreviewSteps: 1));

        // An unreachable threshold spends every backtrack: 20 steps plus four re-advances of three steps.
        Assert.Equal(20 + (4 * 3), result.Cost.Nfe);
        Assert.Equal(2 + 4 + 1, result.Cost.VerifierCalls);
    }

    [Theory]
    [InlineData(false, 20 + (4 * 1))]
    [InlineData(true, 20 + 1 + 2 + 4 + 5)] // the fourth retry at step 5 can go back no further than step 0
    public async Task Dfs_EscalateWhileRetriesFail_DoublesHowFarEachGoesBack(bool escalate, long nfe)
    {
        // A flat verifier: no retry ever scores better, so every one fails.
        var result = await RunFlatAsync(new DfsStrategy([5, 10], Threshold: 1, RecurDepth: 1, MaxBacktracks: 4, PreviewSteps: 1, Escalate: escalate), new SearchBudget());

        Assert.Equal(nfe, result.Cost.Nfe);
        Assert.True(Assert.Single(result.Candidates).Complete);
    }

    [Fact]
    public async Task Dfs_UnderABudget_BacktracksOnlyWithWhatFinishingLeaves()
    {
        // 30 NFE: after step 5 the path needs 15 to finish, so three backtracks of 3 and one of 1 fit; none at step 10.
        var result = await RunFlatAsync(new DfsStrategy([5, 10], Threshold: 1, RecurDepth: 3, MaxBacktracks: 10, PreviewSteps: 1), new SearchBudget { MaxNfe = 30 });

        Assert.Equal(30, result.Cost.Nfe);
        Assert.True(Assert.Single(result.Candidates).Complete);
        Assert.False(result.BudgetLimited);
        Assert.Equal(2 + 4 + 1, result.Cost.VerifierCalls);
    }

    [Fact]
    public async Task Dfs_JudgeStateOnAGaussianModel_IsRefusedNamingJudge()
    {
        var ex = await Assert.ThrowsAsync<InvalidRequestException>(() => RunAsync(new DfsStrategy([5, 10], Threshold: 0, RecurDepth: 3, MaxBacktracks: 4, Judge: DfsJudge.State)));

        Assert.Equal("strategy.judge", ex.Argument);
        Assert.Contains("model 'gaussian-data' is a gaussian model", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Dfs_JudgeStateWithItsOwnPreviewSteps_IsRefused()
    {
        var ex = Assert.Throws<InvalidRequestException>(() => new DfsStrategy([5], 0, 3, 4, PreviewSteps: 3, Judge: DfsJudge.State).Validate(20));

        Assert.Equal("strategy.preview_steps", ex.Argument);
    }

    [Fact]
    public async Task Bfs_Prune_KeepsTheTopWidthAndRefillsToK()
    {
        var result = await RunAsync(new BfsStrategy(4, [10], BfsMode.Prune, Width: 2, PreviewSteps: 1), candidates: 4);

        // Four particles to step 10; the best two forked twice each (eta > 0: no renoise); four finish.
        Assert.Equal((4 * 10) + (4 * 10), result.Cost.Nfe);
        Assert.Equal(4, result.Candidates.Count);
        Assert.Equal(2, result.Candidates.Select(c => c.Path.Split('/')[0]).Distinct().Count());
    }

    [Fact]
    public async Task Bfs_PruneWithRenoise_ForkedSurvivorsPayTheRenoisedSteps()
    {
        var strategy = new BfsStrategy(4, [10], BfsMode.Prune, Width: 2, PreviewSteps: 1) { RenoiseSteps = 3 };

        var result = await RunAsync(strategy, candidates: 4);

        // Four particles to step 10; the best two forked twice each, every child renoised back to step 7; four finish.
        Assert.Equal((4 * 10) + (4 * 13), result.Cost.Nfe);
        Assert.InRange(result.Cost.Nfe, strategy.Plan(new PlanContext(20, ForkRenoiseSteps: 0)).Nfe.Min, strategy.Plan(new PlanContext(20, ForkRenoiseSteps: 0)).Nfe.Max);
        Assert.Equal(4, result.Candidates.Select(c => string.Join(',', c.Sample)).Distinct().Count());
    }

    [Theory]
    [InlineData(StrategyNames.Bfs)]
    [InlineData(StrategyNames.FkSteering)]
    [InlineData(StrategyNames.SharedPrefix)]
    public void Create_NegativeRenoise_IsRefusedNamingRenoise(string name)
    {
        var strategy = StrategyCatalog.BuiltIn.Create(name, new Dictionary<string, string> { ["fork_at"] = "10", ["renoise"] = "-1" }.Where(p => name == StrategyNames.SharedPrefix || p.Key == "renoise").ToDictionary(), 20);

        var error = Assert.Throws<InvalidRequestException>(() => strategy.Validate(20));

        Assert.Equal("strategy.renoise", error.Argument);
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(0.3)]
    [InlineData(0.99)]
    public void FkCopies_Systematic_GivesEachParticleFloorOrCeilingOfKTimesItsWeight(double u)
    {
        double[] weights = [0.55, 0.3, 0.15, 0.0];

        var copies = FkSteeringStrategy.Copies(weights, [u, 0.9, 0.9, 0.9], FkResampling.Systematic);

        // k·w = 2.2, 1.2, 0.6, 0: 2 or 3, 1 or 2, 0 or 1 and no copies, whatever u is (multinomial draws could give any count).
        Assert.Equal(4, copies.Sum());
        Assert.InRange(copies[0], 2, 3);
        Assert.InRange(copies[1], 1, 2);
        Assert.InRange(copies[2], 0, 1);
        Assert.Equal(0, copies[3]);
    }

    [Fact]
    public void FkCopies_Multinomial_DrawsEachUniformIndependently()
    {
        double[] weights = [0.55, 0.3, 0.15, 0.0];

        var copies = FkSteeringStrategy.Copies(weights, [0.9, 0.9, 0.9, 0.1], FkResampling.Multinomial);

        // Three draws land in the third particle's share (0.85 … 1), one in the first's.
        Assert.Equal([1, 0, 3, 0], copies);
    }

    [Fact]
    public async Task FkSteering_SystematicResampling_IsDeterministicAndWithinItsPlan()
    {
        var strategy = new FkSteeringStrategy(4, FkPotential.Immediate, 20, 4, false, PreviewSteps: 1) { Resampling = FkResampling.Systematic };

        var first = await RunAsync(strategy, candidates: 4);
        var second = await RunAsync(strategy, candidates: 4);

        Assert.Equal(first.Candidates.Select(c => c.Sample), second.Candidates.Select(c => c.Sample));
        Assert.InRange(first.Cost.Nfe, strategy.Plan(new PlanContext(20, ForkRenoiseSteps: 0)).Nfe.Min, strategy.Plan(new PlanContext(20, ForkRenoiseSteps: 0)).Nfe.Max);
    }

    [Fact]
    public async Task SharedPrefix_ForkSchedule_ForksAtEveryStep()
    {
        var result = await RunAsync(new SharedPrefixStrategy([(5, 2), (10, 3)]), candidates: 6);

        Assert.Equal(5 + (2 * 5) + (6 * 10), result.Cost.Nfe);
        Assert.Equal(6 * 20, result.Cost.NfeIndependent);
        Assert.Equal(6, result.Candidates.Count);
    }

    [Fact]
    public async Task SharedPrefix_RenoiseUnderEta_ChildrenRestartEarlierAndPayTheSteps()
    {
        var strategy = new SharedPrefixStrategy(3, 10) { RenoiseSteps = 4 };

        var result = await RunAsync(strategy, candidates: 3);
        var plan = strategy.Plan(new PlanContext(20, ForkRenoiseSteps: 0));

        // One trajectory to step 10; each of 3 children renoised back to step 6 (η = 0.5 renoises nothing by itself) and run to 20.
        Assert.Equal(10 + (3 * 14), result.Cost.Nfe);
        Assert.Equal(NfeRange.Exactly(10 + (3 * 14)), plan.Nfe);
        Assert.Equal(3 * 24, result.Cost.NfeIndependent);
        Assert.Equal(NfeRange.Exactly(3 * 24), plan.Independent);
        Assert.Equal(3, result.Candidates.Select(c => string.Join(',', c.Sample)).Distinct().Count());
    }

    [Theory]
    [InlineData(25, 50, 4, 33, 6)] // the bench's k = 4 row: 8 steps later, renoised 6 back
    [InlineData(25, 50, 8, 33, 7)]
    [InlineData(20, 30, 4, 25, 3)] // N/6 of 30 is 5
    [InlineData(45, 50, 4, 49, 3)] // at most to N − 1
    [InlineData(49, 50, 4, 49, 0)] // no later step: the plain fork
    [InlineData(0, 50, 4, 0, 0)] // forking at the root is independent samples already
    public void AutoFork_CalibratedStep_ForksLaterRenoisedAtNoMoreThanThePlainForksCost(int calibrated, int steps, int k, int step, int renoise)
    {
        var fork = SharedPrefixStrategy.AutoFork(calibrated, steps, k);

        Assert.Equal((step, renoise), fork);
        Assert.True(step + (k * (steps - step + renoise)) <= calibrated + (k * (steps - calibrated)));
    }

    [Fact]
    public async Task SharedPrefix_RenoiseTwice_IsDeterministic()
    {
        var first = await RunAsync(new SharedPrefixStrategy(3, 10) { RenoiseSteps = 4 }, candidates: 3);
        var second = await RunAsync(new SharedPrefixStrategy(3, 10) { RenoiseSteps = 4 }, candidates: 3);
        var plain = await RunAsync(new SharedPrefixStrategy(3, 10), candidates: 3);

        Assert.Equal(first.Candidates.Select(c => c.Sample), second.Candidates.Select(c => c.Sample));
        Assert.NotEqual(first.Candidates[0].Sample, plain.Candidates[0].Sample);
    }

    [Fact]
    public async Task SearchOverPaths_Rounds_AdvanceByBackwardMinusForward()
    {
        var result = await RunAsync(new SearchOverPathsStrategy(Candidates: 2, Continuations: 2, StartStep: 10, Forward: 2, Backward: 6, PreviewSteps: 1));

        // 2 roots to step 10, then rounds 10→8→14, 14→12→18, 18→16→20: 4 continuations each time.
        Assert.Equal((2 * 10) + (4 * 6) + (4 * 6) + (4 * 4), result.Cost.Nfe);
    }

    [Fact]
    public async Task ZeroOrder_Iterations_RunEveryNeighbourToTheEnd()
    {
        var result = await RunAsync(new ZeroOrderStrategy(Neighbours: 3, Similarity: 0.8, Iterations: 2));

        Assert.Equal(20 * (1 + (2 * 3)), result.Cost.Nfe);
        Assert.Equal(1 + (2 * 3), result.Cost.VerifierCalls);
    }
}

/// <summary>Scores every sample 0.</summary>
file sealed class FlatVerifier : IVerifier
{
    public string Name => "flat";

    public Task<float[]> ScoreAsync(VerifierBatch batch, CancellationToken cancellationToken = default) => Task.FromResult(new float[batch.Count]);
}
