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
        Assert.Equal(calibration.ForkStep, first.ForkStep);
        Assert.InRange(calibration.ForkStep, 5, 30); // before the decision at step 32
        var s = calibration.ForkStep;
        Assert.Equal(s + (4 * (50 - s)), first.Cost.Nfe);
        Assert.Equal(calibration.Nfe, first.Cost.CalibrationNfe);
        Assert.Equal(s, second.ForkStep);
        Assert.Equal(0, second.Cost.CalibrationNfe);
    }

    [Fact]
    public async Task RunAsync_ForkAtAutoWithoutVerifiers_IsRejected()
    {
        await using var engine = new SearchEngine(new FakeModels(new DecidedAtStepDenoiser(50, 32), new MeanVerifier()));

        var ex = await Assert.ThrowsAsync<InvalidRequestException>(() => engine.RunAsync(Request(new SharedPrefixStrategy(4, null)) with { Verifiers = [] }));

        Assert.Equal("verifiers", ex.Argument);
    }
}
