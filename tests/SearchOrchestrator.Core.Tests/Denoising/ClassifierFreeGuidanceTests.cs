using SearchOrchestrator.Denoising;

namespace SearchOrchestrator.Core.Tests.Denoising;

public sealed class ClassifierFreeGuidanceTests
{
    [Theory]
    [InlineData(0.0, 1.0)]
    [InlineData(1.0, 3.0)]
    [InlineData(2.5, 6.0)]
    public void Combine_Scale_ExtrapolatesFromUnconditionalTowardConditional(double scale, float expected)
    {
        var destination = new float[1];

        ClassifierFreeGuidance.Combine([3f], [1f], scale, destination);

        Assert.Equal(expected, destination[0], 6);
    }

    [Fact]
    public void Validate_GuidanceWithoutNullCondition_ThrowsNamingGuidance()
    {
        var vocabulary = new ConditionVocabulary([new("a", 1)], nullId: null);

        var ex = Assert.Throws<InvalidRequestException>(() => ClassifierFreeGuidance.Validate(2, vocabulary, "m"));

        Assert.Equal("guidance", ex.Argument);
        ClassifierFreeGuidance.Validate(1, vocabulary, "m");
    }

    [Theory]
    [InlineData(-1.0)]
    [InlineData(double.PositiveInfinity)]
    [InlineData(double.NaN)]
    public void Validate_NegativeOrNonFinite_Throws(double scale)
    {
        var vocabulary = new ConditionVocabulary([new("a", 1)], nullId: 0);

        Assert.Equal("guidance", Assert.Throws<InvalidRequestException>(() => ClassifierFreeGuidance.Validate(scale, vocabulary, "m")).Argument);
    }
}
