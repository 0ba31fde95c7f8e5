using SearchOrchestrator.Denoising;

namespace SearchOrchestrator.Core.Tests.Denoising;

public sealed class ConditionVocabularyTests
{
    private static ConditionVocabulary Counts() =>
        new(Enumerable.Range(1, 9).Select(n => new KeyValuePair<string, long>(n.ToString(), n)), nullId: 0);

    [Fact]
    public void Resolve_KnownLabel_ReturnsItsId()
    {
        Assert.Equal(7, Counts().Resolve("7", "counting"));
    }

    [Fact]
    public void Resolve_UnknownLabel_ThrowsNamingConditionModelAndChoices()
    {
        var ex = Assert.Throws<InvalidRequestException>(() => Counts().Resolve("12", "counting"));

        Assert.Equal("condition", ex.Argument);
        Assert.Equal("condition '12' is not in the vocabulary of model 'counting'; use one of: 1, 2, 3, 4, 5, 6, 7, 8, 9.", ex.Message);
    }

    [Fact]
    public void Constructor_LabelUsingTheNullId_Throws()
    {
        Assert.Throws<ArgumentException>(() => new ConditionVocabulary([new("a", 0)], nullId: 0));
    }

    [Fact]
    public void SupportsGuidance_FollowsNullId()
    {
        Assert.True(Counts().SupportsGuidance);
        Assert.False(new ConditionVocabulary([new("a", 1)], nullId: null).SupportsGuidance);
    }
}
