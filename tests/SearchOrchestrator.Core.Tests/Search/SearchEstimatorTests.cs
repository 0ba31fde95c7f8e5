using SearchOrchestrator.Core.Tests.TestDoubles;
using SearchOrchestrator.Search;
using SearchOrchestrator.Strategies;

namespace SearchOrchestrator.Core.Tests.Search;

public sealed class SearchEstimatorTests
{
    private static SearchRequest Request(ISearchStrategy strategy, int steps, double eta) => new()
    {
        Model = "gaussian-data",
        Condition = "1",
        Steps = steps,
        Eta = eta,
        Seed = 11,
        Strategy = strategy,
        Verifiers = ["mean"],
    };

    /// <summary>Strategies whose cost is fixed by their parameters, each under a stochastic and a deterministic sampler.</summary>
    public static TheoryData<string, string, int, double> ExactStrategies()
    {
        var data = new TheoryData<string, string, int, double>();
        foreach (var eta in new[] { 0.5, 0.0 })
        {
            data.Add(StrategyNames.BestOfN, "n=3", 12, eta);
            data.Add(StrategyNames.SharedPrefix, "k=4,fork_at=0", 12, eta);
            data.Add(StrategyNames.SharedPrefix, "k=4,fork_at=6", 12, eta);
            data.Add(StrategyNames.SharedPrefix, "k=3,fork_at=11", 12, eta);
            data.Add(StrategyNames.SharedPrefix, "fork_schedule=3:2;8:3", 12, eta);
            data.Add(StrategyNames.SearchOverPaths, "candidates=2,continuations=3,start_step=4,forward=2,backward=4", 12, eta);
            data.Add(StrategyNames.ZeroOrder, "neighbours=2,iterations=2", 12, eta);
        }

        data.Add(StrategyNames.Bfs, "particles=4,evaluate_at=4;8,mode=prune,width=2", 12, 0.5);
        data.Add(StrategyNames.Bfs, "particles=4,evaluate_at=4;10,mode=prune,width=2,preview_steps=3", 12, 0.5);
        data.Add(StrategyNames.SearchOverPaths, "candidates=2,continuations=3,start_step=4,forward=2,backward=4,preview_steps=3", 12, 0.5);
        data.Add(StrategyNames.SearchOverPaths, "candidates=2,continuations=3,start_step=4,forward=2,backward=4,preview_steps=5", 12, 0.0);
        return data;
    }

    /// <summary>Adaptive strategies: the estimate is a bound.</summary>
    public static TheoryData<string, string, int, double> AdaptiveStrategies()
    {
        var data = new TheoryData<string, string, int, double>();
        foreach (var eta in new[] { 0.5, 0.0 })
        {
            data.Add(StrategyNames.Dfs, "evaluate_at=4;8,threshold=0.9,recur_depth=3,max_backtracks=4", 12, eta);
            data.Add(StrategyNames.Bfs, "particles=4,evaluate_at=4;8,temperature=0.05", 12, eta);
            data.Add(StrategyNames.Bfs, "particles=4,evaluate_at=4;8,mode=prune,width=2", 12, eta);
            data.Add(StrategyNames.FkSteering, "particles=4,resample_every=3,lambda=20", 12, eta);
            data.Add(StrategyNames.SharedPrefix, "k=3", 12, eta);
            data.Add(StrategyNames.Dfs, "evaluate_at=4;8,threshold=0.9,recur_depth=3,max_backtracks=4,preview_steps=3", 12, eta);
            data.Add(StrategyNames.Dfs, "evaluate_at=4;8,threshold=0.9,recur_depth=1,max_backtracks=6,escalate=true", 12, eta);
            data.Add(StrategyNames.Bfs, "particles=4,evaluate_at=4;8,temperature=0.05,preview_steps=2", 12, eta);
            data.Add(StrategyNames.FkSteering, "particles=4,resample_every=3,lambda=20,preview_steps=4", 12, eta);
            data.Add(StrategyNames.FkSteering, "particles=4,resample_every=3,lambda=20,resampling=systematic,renoise=2", 12, eta);
        }

        return data;
    }

    private static ISearchStrategy Strategy(string name, string parameters, int steps) =>
        StrategyCatalog.BuiltIn.Create(name, parameters.Split(',').Select(p => p.Split('=')).ToDictionary(p => p[0], p => p[1].Replace(';', ',')), steps);

    [Theory]
    [MemberData(nameof(ExactStrategies))]
    public async Task Estimate_FixedCostStrategy_EqualsMeasuredNfeAndIndependentNfe(string name, string parameters, int steps, double eta)
    {
        var request = Request(Strategy(name, parameters, steps), steps, eta);
        await using var engine = new SearchEngine(new FakeModels(new GaussianDataDenoiser(new(0, 1)), new MeanVerifier()));
        engine.Validate(request);

        var estimate = SearchEstimator.Estimate(request);
        var measured = (await engine.RunAsync(request)).Cost;

        Assert.True(estimate.Exact);
        Assert.Equal(measured.Nfe, estimate.Nfe);
        Assert.Equal(measured.NfeIndependent, estimate.NfeIndependent);
        Assert.Equal(measured.PreviewNfe, estimate.PreviewNfe);
        Assert.Equal((double)measured.Nfe / steps, estimate.Multiplier, 12);
    }

    [Theory]
    [MemberData(nameof(AdaptiveStrategies))]
    public async Task Estimate_AdaptiveStrategy_BoundsMeasuredNfeOverSeeds(string name, string parameters, int steps, double eta)
    {
        await using var engine = new SearchEngine(new FakeModels(new GaussianDataDenoiser(new(0, 1)), new MeanVerifier()));
        var estimate = SearchEstimator.Estimate(Request(Strategy(name, parameters, steps), steps, eta));

        for (ulong seed = 0; seed < 6; seed++)
        {
            var measured = (await engine.RunAsync(Request(Strategy(name, parameters, steps), steps, eta) with { Seed = seed })).Cost;

            Assert.InRange(measured.Nfe, estimate.NfeMin, estimate.Nfe);
            Assert.InRange(measured.NfeIndependent, estimate.NfeIndependentMin, estimate.NfeIndependent);
            Assert.InRange(measured.PreviewNfe, 0, estimate.PreviewNfe);
        }
    }

    [Theory]
    [InlineData(2, 0, 50, 2.0)]
    [InlineData(4, 10, 50, 3.4)]
    [InlineData(8, 25, 50, 4.5)]
    [InlineData(8, 40, 50, 2.4)]
    public void Estimate_SharedPrefixUnderStochasticSampler_MultiplierIsKMinusKMinusOneTimesSOverN(int k, int s, int n, double m)
    {
        var estimate = SearchEstimator.Estimate(Request(new SharedPrefixStrategy(k, s), n, eta: 0.5));

        Assert.Equal(m, estimate.Multiplier, 12);
        Assert.Equal((long)k * n, estimate.NfeIndependent);
        Assert.True(estimate.Exact);
    }

    [Fact]
    public void Estimate_BudgetBelowPlan_CapsNfeAndSaysSo()
    {
        var request = Request(new BestOfNStrategy(4), 10, 0.5) with { Budget = new SearchBudget { MaxNfe = 25 } };

        var estimate = SearchEstimator.Estimate(request);

        Assert.Equal(25, estimate.Nfe);
        Assert.True(estimate.BudgetLimited);
    }

    [Fact]
    public void Estimate_ForkAtAuto_SaysItCalibrates()
    {
        var estimate = SearchEstimator.Estimate(Request(new SharedPrefixStrategy(4, null), 50, 0.5));

        Assert.True(estimate.Calibrates);
        Assert.False(estimate.Exact);
        Assert.Equal(200, estimate.Nfe);
        Assert.Equal(49 + 4, estimate.NfeMin);
    }

    [Fact]
    public void Estimate_ForkStepPastN_ThrowsNamingTheParameter()
    {
        var error = Assert.Throws<InvalidRequestException>(() => SearchEstimator.Estimate(Request(new SharedPrefixStrategy(4, 50), 50, 0.5)));

        Assert.Equal("strategy.fork_at", error.Argument);
    }
}
