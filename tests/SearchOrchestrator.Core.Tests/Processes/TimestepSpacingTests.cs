using SearchOrchestrator.Processes;

namespace SearchOrchestrator.Core.Tests.Processes;

/// <summary>diffusers' timestep spacings, as DDIMScheduler.set_timesteps computes them.</summary>
public sealed class TimestepSpacingTests
{
    private static readonly NoiseSchedule Sd = NoiseSchedule.ScaledLinear(1000, 0.00085, 0.012);

    [Fact]
    public void Steps_LeadingWithOffsetOne_AreStableDiffusionsDdimTimesteps()
    {
        var steps = new GaussianProcess(Sd, PredictionType.Epsilon, spacing: new TimestepSpacing { Kind = TimestepSpacingKind.Leading, StepsOffset = 1, FinalAlphaIsOne = false }).Steps(50);

        // np.arange(0, 50) * (1000 // 50), reversed, + 1
        Assert.Equal(Enumerable.Range(0, 50).Select(i => ((49 - i) * 20) + 1.0), Enumerable.Range(0, 50).Select(steps.TimestepAt));
        Assert.Equal(Sd.AlphaBar(981), steps.AlphaBarAt(0));
        Assert.Equal(Sd.AlphaBar(0), steps.AlphaBarAt(50));
    }

    [Fact]
    public void Steps_Linspace_IncludeBothEnds()
    {
        var steps = new GaussianProcess(Sd, PredictionType.Epsilon, spacing: new TimestepSpacing { Kind = TimestepSpacingKind.Linspace }).Steps(7);

        // np.linspace(0, 999, 7).round()[::-1]
        Assert.Equal([999.0, 832, 666, 500, 333, 166, 0], Enumerable.Range(0, 7).Select(steps.TimestepAt));
        Assert.Equal(1.0, steps.AlphaBarAt(7));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(50)]
    [InlineData(1000)]
    public void Steps_DefaultSpacing_IsTheTrainingSchedulesTrailingSteps(int count)
    {
        var process = new GaussianProcess(Sd, PredictionType.Epsilon);

        var steps = process.Steps(count);

        Assert.Equal(Enumerable.Range(0, count).Select(Sd.Steps(count).TimestepAt), Enumerable.Range(0, count).Select(steps.TimestepAt));
        Assert.Equal(1.0, steps.AlphaBarAt(count));
    }

    [Fact]
    public void Steps_LeadingOffsetPastTheSchedule_IsRefusedNamingSteps()
    {
        var process = new GaussianProcess(Sd, PredictionType.Epsilon, spacing: new TimestepSpacing { Kind = TimestepSpacingKind.Leading, StepsOffset = 1 });

        var ex = Assert.Throws<InvalidRequestException>(() => process.Steps(1000));

        Assert.Equal("steps", ex.Argument);
        Assert.Equal("1000 steps with leading spacing and steps_offset 1 reach timestep 1000, past the model's 1000 training steps; use fewer steps.", ex.Message);
    }

    [Fact]
    public void ScaledLinear_SdValues_SquaresLinearlySpacedRoots()
    {
        Assert.Equal(0.00085, Sd.Betas[0], 12);
        Assert.Equal(0.012, Sd.Betas[999], 12);
        Assert.Equal(Math.Pow(Math.Sqrt(0.00085) + ((Math.Sqrt(0.012) - Math.Sqrt(0.00085)) * 500 / 999), 2), Sd.Betas[500], 12);
    }
}
