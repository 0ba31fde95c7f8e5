using SearchOrchestrator.Core.Tests.TestDoubles;
using SearchOrchestrator.Search;
using SearchOrchestrator.Strategies;

namespace SearchOrchestrator.Core.Tests.Search;

public sealed class ForkCalibrationTests
{
    private static SearchRequest Request(ISearchStrategy strategy) => new()
    {
        Model = "decided",
        Condition = "x",
        Steps = 50,
        Eta = 1,
        Seed = 5,
        Strategy = strategy,
        Verifiers = ["mean"],
    };

    [Theory]
    [InlineData(32)]
    [InlineData(24)]
    public async Task MeasureAsync_AttributeDecidedAtAKnownStep_ForksBeforeItAndWhereSiblingsStillGain(int decisionStep)
    {
        await using var engine = new SearchEngine(new FakeModels(new DecidedAtStepDenoiser(50, decisionStep), new MeanVerifier()));
        // Enough probes that the sampling noise of the gain estimate stays well inside the 10% the criterion allows.
        var measure = new ForkCalibration(engine) { Probes = 64 };

        var calibration = await measure.MeasureAsync(Request(new BestOfNStrategy(1)));

        var gain = calibration.Gain.ToDictionary(p => p.Step, p => p.Gain);
        // Independent samples end with either sign, so picking the best of four gains a lot...
        Assert.True(gain[0] > 0.5, $"independent gain {gain[0]}");
        // ...siblings forked once the sign is decided all end alike and gain nothing...
        Assert.All(calibration.Gain.Where(p => p.Step >= decisionStep), p => Assert.Equal(0, p.Gain));
        // ...so auto forks before the decision, at the latest step that keeps the required share of the independent gain.
        var share = measure.RetainedGain;
        Assert.InRange(calibration.ForkStep, 1, decisionStep - 1);
        Assert.True(gain[calibration.ForkStep] >= share * gain[0]);
        Assert.All(calibration.Gain.Where(p => p.Step > calibration.ForkStep), p => Assert.True(p.Gain < share * gain[0], $"step {p.Step} gains {p.Gain}"));
    }

    [Fact]
    public async Task RunAsync_ForkAtAuto_UsesTheCalibratedStepAndReportsItsCostOnce()
    {
        await using var engine = new SearchEngine(new FakeModels(new DecidedAtStepDenoiser(50, 32), new MeanVerifier()));

        var first = await engine.RunAsync(Request(new SharedPrefixStrategy(4, forkAt: null)) with { Candidates = 4 });
        var second = await engine.RunAsync(Request(new SharedPrefixStrategy(4, forkAt: null)) with { Seed = 6 });

        var (calibration, ran) = await engine.Calibration.GetAsync(Request(new BestOfNStrategy(1)));
        Assert.False(ran);
        Assert.InRange(calibration.ForkStep, 5, 30); // before the decision at step 32
        // Forked N/6 = 8 steps later, each of the 4 children renoised back ⌊3·8/4⌋ = 6 steps: the plain fork's cost.
        var s = calibration.ForkStep;
        Assert.Equal(s + 8, first.ForkStep);
        Assert.Equal(s + 8 + (4 * (50 - s - 8 + 6)), first.Cost.Nfe);
        Assert.Equal(s + (4 * (50 - s)), first.Cost.Nfe);
        Assert.Equal(calibration.Nfe, first.Cost.CalibrationNfe);
        Assert.Equal(s + 8, second.ForkStep);
        Assert.Equal(0, second.Cost.CalibrationNfe);
    }

    [Fact]
    public async Task RunAsync_ForkAtAutoWithRenoise_ForksAtTheCalibratedStepRenoisedThatFar()
    {
        await using var engine = new SearchEngine(new FakeModels(new DecidedAtStepDenoiser(50, 32), new MeanVerifier()));

        var result = await engine.RunAsync(Request(new SharedPrefixStrategy(4, forkAt: null) { RenoiseSteps = 3 }));

        var s = (await engine.Calibration.GetAsync(Request(new BestOfNStrategy(1)))).Result.ForkStep;
        Assert.Equal(s, result.ForkStep);
        Assert.Equal(s + (4 * (50 - s + 3)), result.Cost.Nfe);
    }

    [Theory]
    [InlineData(1.0)]
    [InlineData(0.0)]
    public async Task PlannedNfe_AnyEta_IsWhatMeasureSpends(double eta)
    {
        await using var engine = new SearchEngine(new FakeModels(new DecidedAtStepDenoiser(50, 32, elements: 16), new MeanVerifier()));
        var calibration = new ForkCalibration(engine) { Probes = 3 };
        var request = Request(new BestOfNStrategy(1)) with { Eta = eta, ForkRenoiseSteps = 4 };

        var measured = await calibration.MeasureAsync(request);

        Assert.Equal(calibration.PlannedNfe(request), measured.Nfe);
    }

    [Fact]
    public async Task RunAsync_ForkAtAuto_CalibrationCountsAgainstTheBudget()
    {
        await using var engine = new SearchEngine(new FakeModels(new DecidedAtStepDenoiser(50, 32, elements: 16), new MeanVerifier()));
        var request = Request(new SharedPrefixStrategy(4, forkAt: null));
        var calibration = engine.Calibration.PlannedNfe(request);

        var estimate = engine.Estimate(request with { Budget = new SearchBudget { MaxNfe = calibration + 60 } });
        var result = await engine.RunAsync(request with { Budget = new SearchBudget { MaxNfe = calibration + 60 } });

        Assert.Equal(calibration, estimate.CalibrationNfe);
        Assert.Equal(60, estimate.Nfe);
        Assert.Equal(calibration, result.Cost.CalibrationNfe);
        Assert.InRange(result.Cost.Nfe, 1, 60); // what the calibration left of the budget (unlimited, the search spends 4 × 50 − 3 s)
        Assert.True(result.BudgetLimited);
        Assert.Equal(0, engine.Estimate(request).CalibrationNfe); // calibrated now: later requests pay nothing
    }

    [Fact]
    public async Task RunAsync_BudgetBelowTheCalibration_IsRejectedNamingTheBudget()
    {
        await using var engine = new SearchEngine(new FakeModels(new DecidedAtStepDenoiser(50, 32, elements: 16), new MeanVerifier()));
        var request = Request(new SharedPrefixStrategy(4, forkAt: null)) with { Budget = new SearchBudget { MaxNfe = 300 } };

        var ex = await Assert.ThrowsAsync<InvalidRequestException>(() => engine.RunAsync(request));

        Assert.Equal("budget.max_nfe", ex.Argument);
        Assert.Equal($"fork_at: auto first calibrates this model, condition and sampler, which spends {engine.Calibration.PlannedNfe(request)} NFE, more than budget.max_nfe 300; raise the budget or give fork_at a step.", ex.Message);
    }

    [Fact]
    public async Task RunAsync_RequestCancelledWhileCalibrating_TerminatesTheCalibrationsPass()
    {
        var gated = new GatedDenoiser(new DecidedAtStepDenoiser(50, 32, elements: 16));
        await using var engine = new SearchEngine(new FakeModels(gated, new MeanVerifier()));
        using var cancel = new CancellationTokenSource();
        var search = engine.RunAsync(Request(new SharedPrefixStrategy(4, forkAt: null)), cancel.Token);
        Assert.True(await gated.WaitForPassAsync()); // the calibration's first pass is held

        await cancel.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => search);
        await gated.PassCancelled.WaitAsync(TimeSpan.FromSeconds(30));
    }

    [Fact]
    public async Task GetAsync_SameSettingsWhileRunning_SharesTheRunWhichOutlivesACancelledRequest()
    {
        var gated = new GatedDenoiser(new DecidedAtStepDenoiser(50, 32, elements: 16));
        await using var engine = new SearchEngine(new FakeModels(gated, new MeanVerifier()));
        var calibration = new ForkCalibration(engine) { Probes = 2, GridPoints = 2 };
        var request = Request(new SharedPrefixStrategy(4, forkAt: null));
        using var cancel = new CancellationTokenSource();
        var first = calibration.GetAsync(request, cancel.Token);
        Assert.True(await gated.WaitForPassAsync());
        var second = calibration.GetAsync(request with { Seed = 99 });

        await cancel.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => first);
        gated.Release(100_000);
        var (result, ran) = await second;

        Assert.False(ran);
        Assert.Equal(calibration.PlannedNfe(request), result.Nfe);
        Assert.False(gated.PassCancelled.IsCompleted);
        Assert.Equal(1, calibration.Cached);
    }

    [Fact]
    public async Task GetAsync_MoreSettingsThanTheCapacity_KeepsAtMostTheCapacity()
    {
        await using var engine = new SearchEngine(new FakeModels(new DecidedAtStepDenoiser(50, 32, elements: 16), new MeanVerifier()));
        using var calibration = new ForkCalibration(engine, capacity: 2) { Probes = 2, GridPoints = 2 };

        foreach (var steps in new[] { 10, 20, 30, 40 })
        {
            await calibration.GetAsync(Request(new BestOfNStrategy(1)) with { Steps = steps });
        }

        Assert.InRange(calibration.Cached, 1, 2);
    }

    [Fact]
    public async Task RunAsync_ForkAtAutoWithoutVerifiers_IsRejected()
    {
        await using var engine = new SearchEngine(new FakeModels(new DecidedAtStepDenoiser(50, 32), new MeanVerifier()));

        var ex = await Assert.ThrowsAsync<InvalidRequestException>(() => engine.RunAsync(Request(new SharedPrefixStrategy(4, null)) with { Verifiers = [] }));

        Assert.Equal("verifiers", ex.Argument);
    }
}
