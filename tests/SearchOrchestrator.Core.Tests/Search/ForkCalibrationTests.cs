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
    [InlineData(32, 30)]
    [InlineData(18, 15)]
    public async Task MeasureAsync_AttributeDecidedAtAKnownStep_FindsTheLastGridStepBeforeIt(int decisionStep, int expected)
    {
        await using var engine = new SearchEngine(new FakeModels(new DecidedAtStepDenoiser(50, decisionStep), new MeanVerifier()));

        var calibration = await engine.Calibration.MeasureAsync(Request(new BestOfNStrategy(1)));

        Assert.Equal(expected, calibration.ForkStep);
        Assert.True(calibration.Spread[0].Spread > 1, "independent samples end with either sign");
        Assert.All(calibration.Spread.Where(p => p.Step >= decisionStep), p => Assert.Equal(0, p.Spread));
    }

    [Fact]
    public async Task RunAsync_ForkAtAuto_UsesTheCalibratedStepAndReportsItsCostOnce()
    {
        await using var engine = new SearchEngine(new FakeModels(new DecidedAtStepDenoiser(50, 32), new MeanVerifier()));

        var first = await engine.RunAsync(Request(new SharedPrefixStrategy(4, forkAt: null)) with { Candidates = 4 });
        var second = await engine.RunAsync(Request(new SharedPrefixStrategy(4, forkAt: null)) with { Seed = 6 });

        Assert.Equal(30, first.ForkStep);
        Assert.Equal(30 + (4 * 20), first.Cost.Nfe);
        Assert.True(first.Cost.CalibrationNfe > 0);
        Assert.Equal(30, second.ForkStep);
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
