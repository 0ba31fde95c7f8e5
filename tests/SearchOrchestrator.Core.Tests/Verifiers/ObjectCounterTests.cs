using SearchOrchestrator.Tensors;
using SearchOrchestrator.Verifiers;

namespace SearchOrchestrator.Core.Tests.Verifiers;

public sealed class ObjectCounterTests
{
    /// <summary>Parses rows of '#' (object, 1) and '.' (background, -1).</summary>
    private static float[] Image(params string[] rows) =>
        rows.SelectMany(r => r.Select(c => c == '#' ? 1f : -1f)).ToArray();

    [Fact]
    public void Count_SeparateObjects_CountsEach()
    {
        var image = Image(
            "##...#",
            "##..##",
            "......",
            "###...",
            "...#.#",
            "...###");

        Assert.Equal(3, new ObjectCounter().Count(image, 6, 6));
    }

    [Fact]
    public void Count_DiagonalTouch_IsOneObject()
    {
        var image = Image(
            "##..",
            "##..",
            "..##",
            "..##");

        Assert.Equal(1, new ObjectCounter().Count(image, 4, 4));
    }

    [Fact]
    public void Count_SpecksBelowMinArea_AreIgnored()
    {
        var image = Image(
            "#...##",
            "....#.",
            "##....",
            "......");

        Assert.Equal(1, new ObjectCounter(minArea: 3).Count(image, 4, 6));
        Assert.Equal(3, new ObjectCounter(minArea: 1).Count(image, 4, 6));
    }

    [Fact]
    public async Task ScoreAsync_ExactAndMissedCounts_ScoreMinusTheAbsoluteError()
    {
        var one = Image("##..", "##..", "....", "....");
        var two = Image("##..", "##..", "...#", "..##");
        var batch = new VerifierBatch(new SampleShape(1, 4, 4), one.Concat(two).Concat(two).ToArray(), ["1", "2", "5"]);

        var scores = await new ObjectCounter().ScoreAsync(batch);

        Assert.Equal([0f, 0f, -3f], scores);
    }

    [Fact]
    public async Task ScoreAsync_NonNumericCondition_ThrowsNamingTheVerifier()
    {
        var batch = new VerifierBatch(new SampleShape(1, 2, 2), new float[4], ["cat"]);

        var ex = await Assert.ThrowsAsync<InvalidRequestException>(() => new ObjectCounter().ScoreAsync(batch));

        Assert.Contains("object-counter", ex.Message);
        Assert.Contains("'cat'", ex.Message);
    }

    [Fact]
    public async Task ScoreAsync_NonImageSamples_ThrowsNamingTheShape()
    {
        var batch = new VerifierBatch(new SampleShape(8), new float[8], ["1"]);

        var ex = await Assert.ThrowsAsync<InvalidRequestException>(() => new ObjectCounter().ScoreAsync(batch));

        Assert.Equal("verifiers", ex.Argument);
    }
}
