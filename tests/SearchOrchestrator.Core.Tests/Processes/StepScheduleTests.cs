using SearchOrchestrator.Processes;

namespace SearchOrchestrator.Core.Tests.Processes;

public sealed class StepScheduleTests
{
    private static readonly NoiseSchedule Ddpm = NoiseSchedule.Linear(1000, 1e-4, 0.02);

    [Fact]
    public void Steps_Fifty_UseTrailingSpacingFromTheNoisiestLevel()
    {
        var steps = Ddpm.Steps(50);

        Assert.Equal(50, steps.Count);
        Assert.Equal(999, steps.TimestepAt(0));
        Assert.Equal(979, steps.TimestepAt(1));
        Assert.Equal(19, steps.TimestepAt(49));
        Assert.Equal(Ddpm.AlphaBar(999), steps.AlphaBarAt(0));
        Assert.Equal(1.0, steps.AlphaBarAt(50));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(1000)]
    public void Steps_AnyCount_AreStrictlyDecreasingAndDistinct(int count)
    {
        var steps = Ddpm.Steps(count);

        for (var i = 1; i < count; i++)
        {
            Assert.True(steps.TimestepAt(i) < steps.TimestepAt(i - 1));
        }

        Assert.True(steps.TimestepAt(count - 1) >= 0);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-3)]
    [InlineData(1001)]
    public void Steps_OutOfRange_ThrowInvalidRequestNamingSteps(int count)
    {
        var ex = Assert.Throws<InvalidRequestException>(() => Ddpm.Steps(count));

        Assert.Equal("steps", ex.Argument);
        Assert.Contains("between 1 and 1000", ex.Message);
    }
}
