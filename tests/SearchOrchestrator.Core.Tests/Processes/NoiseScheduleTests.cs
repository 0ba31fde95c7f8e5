using SearchOrchestrator.Processes;

namespace SearchOrchestrator.Core.Tests.Processes;

public sealed class NoiseScheduleTests
{
    [Fact]
    public void Linear_StandardDdpm_HasDeclaredEndpointsAndKnownAlphaBar()
    {
        var schedule = NoiseSchedule.Linear(1000, 1e-4, 0.02);

        Assert.Equal(1000, schedule.TrainingSteps);
        Assert.Equal(1e-4, schedule.Betas[0], 12);
        Assert.Equal(0.02, schedule.Betas[999], 12);
        Assert.Equal(1 - 1e-4, schedule.AlphaBar(0), 12);
        // ᾱ_999 of the standard DDPM schedule is about 4.04e-5.
        Assert.InRange(schedule.AlphaBar(999), 4.0e-5, 4.1e-5);
    }

    [Theory]
    [InlineData("linear")]
    [InlineData("cosine")]
    public void AlphaBar_AcrossTrainingSteps_DecreasesStrictly(string kind)
    {
        var schedule = kind == "linear" ? NoiseSchedule.Linear(1000, 1e-4, 0.02) : NoiseSchedule.Cosine(1000);

        for (var t = 1; t < schedule.TrainingSteps; t++)
        {
            Assert.True(schedule.AlphaBar(t) < schedule.AlphaBar(t - 1), $"ᾱ must fall at t = {t}");
        }

        Assert.True(schedule.AlphaBar(schedule.TrainingSteps - 1) > 0);
    }

    [Fact]
    public void Cosine_AlphaBar_FollowsClosedForm()
    {
        var schedule = NoiseSchedule.Cosine(1000);
        static double F(double t) => Math.Pow(Math.Cos(((t / 1000) + 0.008) / 1.008 * Math.PI / 2), 2);

        Assert.Equal(F(500) / F(0), schedule.AlphaBar(499), 9);
    }

    [Fact]
    public void Linear_InvalidBetas_Throw()
    {
        Assert.Throws<ArgumentException>(() => NoiseSchedule.Linear(1000, 0.02, 1e-4));
        Assert.Throws<ArgumentException>(() => NoiseSchedule.Linear(1000, 0, 0.02));
        Assert.Throws<ArgumentOutOfRangeException>(() => NoiseSchedule.Linear(0, 1e-4, 0.02));
    }
}
