using System.Text.Json;
using SearchOrchestrator.Tensors;
using SearchOrchestrator.Tests;
using SearchOrchestrator.Verifiers;

namespace SearchOrchestrator.Core.Tests.Verifiers;

public sealed class CompositionJudgeTests
{
    private const int Size = 8;

    /// <summary>
    /// The scenes of <c>models/training/make_composition_fixtures.py</c>: drawn by the data generator from known groups,
    /// captioned with their own groups or changed ones, each with the verdict that follows from the two group lists.
    /// </summary>
    public static TheoryData<string> FixtureCaptions()
    {
        var data = new TheoryData<string>();
        foreach (var fixture in LoadFixtures())
        {
            data.Add($"{fixture.Caption} | drawn: {fixture.Drawn} | noise {fixture.Noise}");
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(FixtureCaptions))]
    public void Judge_GeneratedFixture_ReturnsTheVerdictKnownByConstruction(string name)
    {
        var fixture = LoadFixtures().Single(f => $"{f.Caption} | drawn: {f.Drawn} | noise {f.Noise}" == name);

        var verdict = CompositionJudge.Judge(fixture.Image, fixture.Height, fixture.Width, fixture.Caption);

        Assert.Equal(fixture.Distance, verdict.Distance);
        Assert.Equal(fixture.Distance == 0, verdict.Match);
        Assert.Equal(fixture.Count, verdict.CountMatches);
        Assert.Equal(fixture.Color, verdict.ColorMatches);
        Assert.Equal(fixture.Shape, verdict.ShapeMatches);
        Assert.Equal(fixture.Found, verdict.Found);
    }

    [Fact]
    public void LoadFixtures_Committed_CoverMatchesAndEveryKindOfMiss()
    {
        var fixtures = LoadFixtures();

        Assert.Equal(13, fixtures.Count);
        Assert.Equal(7, fixtures.Count(f => f.Distance == 0));
        Assert.Contains(fixtures, f => f.Distance > 0 && !f.Count);
        Assert.Contains(fixtures, f => f.Distance > 0 && f.Count && !f.Color && f.Shape);
        Assert.Contains(fixtures, f => f.Distance > 0 && f.Count && f.Color && !f.Shape);
        Assert.Contains(fixtures, f => f.Distance > 0 && f.Count && f.Color && f.Shape); // a binding swap
    }

    [Fact]
    public void ParseCaption_ThreeGroups_ReturnsThemInOrder()
    {
        var groups = CompositionJudge.ParseCaption("Two red circles,  one BLUE square and nine green triangles");

        Assert.Equal(
            [new CompositionGroup(2, "red", "circle"), new CompositionGroup(1, "blue", "square"), new CompositionGroup(9, "green", "triangle")],
            groups);
    }

    [Theory]
    [InlineData("three purple circles", "word 2 'purple' is not a colour (red, green, blue, yellow).")]
    [InlineData("3 red circles", "word 1 '3' is not a number (one, two, three, four, five, six, seven, eight, nine).")]
    [InlineData("two red hexagons", "word 3 'hexagons' is not a shape (circle, square, triangle).")]
    [InlineData("two red circles or one blue square", "word 4 'or' should be ',' or 'and' between groups.")]
    [InlineData("two red", "'two red' ends early: each group is '<number> <colour> <shape>', e.g. 'three red circles'.")]
    [InlineData("", "'' ends early: each group is '<number> <colour> <shape>', e.g. 'three red circles'.")]
    [InlineData("one red circle and two red circles", "word 7: 'red circles' is named twice.")]
    public void ParseCaption_UnreadableCaption_ThrowsNamingThePromptAndTheWord(string caption, string reason)
    {
        var error = Assert.Throws<InvalidRequestException>(() => CompositionJudge.ParseCaption(caption));

        Assert.Equal("prompt", error.Argument);
        Assert.Equal($"verifier 'composition-judge' cannot read the prompt: {reason}", error.Message);
    }

    [Fact]
    public void FindObjects_DrawnShapes_ClassifiesEachByColourAndShape()
    {
        var image = Blank(16, 16);
        Draw(image, 16, 16, 1, 1, (220, 40, 40), "###", "###", "###");                         // square
        Draw(image, 16, 16, 1, 8, (50, 90, 235), "..#..", "..#..", ".###.", ".###.", "#####"); // triangle
        Draw(image, 16, 16, 9, 1, (230, 210, 40), ".###.", "#####", "#####", "#####", ".###."); // circle
        Draw(image, 16, 16, 9, 9, (40, 200, 60), "#", "#");                                    // a speck

        var objects = CompositionJudge.FindObjects(image, 16, 16);

        Assert.Equal([("red", "square"), ("blue", "triangle"), ("yellow", "circle")], objects);
    }

    [Fact]
    public void FindObjects_TouchingObjectsOfTwoColours_AreTwoObjects()
    {
        var image = Blank(Size, Size);
        Draw(image, Size, Size, 0, 0, (220, 40, 40), "###", "###", "###");
        Draw(image, Size, Size, 0, 3, (40, 200, 60), "###", "###", "###");

        var objects = CompositionJudge.FindObjects(image, Size, Size);

        Assert.Equal([("red", "square"), ("green", "square")], objects);
    }

    [Fact]
    public void FindObjects_WrongLength_Throws()
    {
        var error = Assert.Throws<ArgumentException>(() => CompositionJudge.FindObjects(new float[10], 2, 2));

        Assert.Equal("image", error.ParamName);
    }

    [Fact]
    public async Task ScoreAsync_MatchAndMiss_ScoreMinusTheDistance()
    {
        var image = Blank(Size, Size);
        Draw(image, Size, Size, 1, 1, (220, 40, 40), "###", "###", "###");
        var samples = image.Concat(image).Concat(image).ToArray();
        var batch = new VerifierBatch(new SampleShape(3, Size, Size), samples, ["one red square", "three red squares", "one blue circle"]);

        var scores = await new CompositionJudge().ScoreAsync(batch);

        Assert.Equal([0f, -2f, -2f], scores);
    }

    [Fact]
    public async Task ScoreAsync_SingleChannelSamples_ThrowsNamingTheVerifiers()
    {
        var batch = new VerifierBatch(new SampleShape(1, Size, Size), new float[Size * Size], ["one red square"]);

        var error = await Assert.ThrowsAsync<InvalidRequestException>(() => new CompositionJudge().ScoreAsync(batch));

        Assert.Equal("verifiers", error.Argument);
        Assert.Equal("verifier 'composition-judge' judges RGB images [3, H, W]; this model's samples are [1, 8, 8].", error.Message);
    }

    private static float[] Blank(int height, int width) => Enumerable.Repeat(-1f, 3 * height * width).ToArray();

    /// <summary>Paints the '#' cells of <paramref name="rows"/> at (top, left) in one colour, channel-first.</summary>
    private static void Draw(float[] image, int height, int width, int top, int left, (int R, int G, int B) color, params string[] rows)
    {
        var plane = height * width;
        for (var y = 0; y < rows.Length; y++)
        {
            for (var x = 0; x < rows[y].Length; x++)
            {
                if (rows[y][x] != '#')
                {
                    continue;
                }

                var p = ((top + y) * width) + left + x;
                image[p] = (color.R / 127.5f) - 1f;
                image[plane + p] = (color.G / 127.5f) - 1f;
                image[(2 * plane) + p] = (color.B / 127.5f) - 1f;
            }
        }
    }

    private static List<Fixture> LoadFixtures()
    {
        var path = Path.Combine(RepositoryPaths.Root, "tests", "SearchOrchestrator.Core.Tests", "Verifiers", "Fixtures", "compositions.json");
        using var document = JsonDocument.Parse(File.ReadAllText(path));
        var size = document.RootElement.GetProperty("size").GetInt32();
        return document.RootElement.GetProperty("cases").EnumerateArray().Select(c => new Fixture(
            c.GetProperty("caption").GetString()!,
            c.GetProperty("drawn").GetString()!,
            c.GetProperty("noise").GetDouble(),
            c.GetProperty("distance").GetInt32(),
            c.GetProperty("count").GetBoolean(),
            c.GetProperty("color").GetBoolean(),
            c.GetProperty("shape").GetBoolean(),
            c.GetProperty("found").EnumerateArray().Select(g => new CompositionGroup(g.GetProperty("count").GetInt32(), g.GetProperty("color").GetString()!, g.GetProperty("shape").GetString()!)).ToList(),
            ToImage(Convert.FromBase64String(c.GetProperty("rgb").GetString()!), size),
            size,
            size)).ToList();
    }

    /// <summary>Height x width x 3 bytes to channel-first floats in [-1, 1].</summary>
    private static float[] ToImage(byte[] rgb, int size)
    {
        var plane = size * size;
        var image = new float[3 * plane];
        for (var p = 0; p < plane; p++)
        {
            for (var c = 0; c < 3; c++)
            {
                image[(c * plane) + p] = (rgb[(3 * p) + c] / 127.5f) - 1f;
            }
        }

        return image;
    }

    private sealed record Fixture(string Caption, string Drawn, double Noise, int Distance, bool Count, bool Color, bool Shape, List<CompositionGroup> Found, float[] Image, int Height, int Width);
}
