using SearchOrchestrator.Tensors;
using SearchOrchestrator.Verifiers;

namespace SearchOrchestrator.Onnx.Tests.Runtime;

public sealed class OnnxVerifierTests(SharedRepository shared) : IClassFixture<SharedRepository>
{
    private static readonly SampleShape Shape = new(1, 24, 24);
    private readonly IVerifier _verifier = shared.Repository.GetVerifier("count-verifier");

    /// <summary>A black 24×24 image with <paramref name="count"/> separate 3×3 squares, the kind the verifier was trained on.</summary>
    private static float[] Squares(int count)
    {
        var image = Enumerable.Repeat(-1f, 24 * 24).ToArray();
        for (var i = 0; i < count; i++)
        {
            int top = 2 + (7 * (i / 3)), left = 2 + (7 * (i % 3));
            for (var y = top; y < top + 3; y++)
            {
                for (var x = left; x < left + 3; x++)
                {
                    image[(y * 24) + x] = 0.9f;
                }
            }
        }

        return image;
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(4)]
    [InlineData(9)]
    public async Task ScoreAsync_ImageWithNSquares_GivesTheRightCountHighProbability(int count)
    {
        var image = Squares(count);
        string[] labels = [count.ToString(), (count == 9 ? 8 : count + 1).ToString()];

        var scores = await _verifier.ScoreAsync(new VerifierBatch(Shape, image.Concat(image).ToArray(), labels));

        Assert.True(scores[0] > 0.9f, $"p({count}) = {scores[0]}");
        Assert.True(scores[1] < 0.1f, $"p({labels[1]}) = {scores[1]}");
        Assert.Equal(1f, scores[0] + scores[1], 0.1f);
    }

    [Fact]
    public async Task ScoreAsync_ConditionOutsideItsLabels_ThrowsNamingTheVerifier()
    {
        var ex = await Assert.ThrowsAsync<InvalidRequestException>(() => _verifier.ScoreAsync(new VerifierBatch(Shape, Squares(1), ["12"])));

        Assert.Equal("condition", ex.Argument);
        Assert.Contains("verifier 'count-verifier'", ex.Message);
    }

    [Fact]
    public async Task ScoreAsync_WrongShape_ThrowsNamingTheShapes()
    {
        var ex = await Assert.ThrowsAsync<InvalidRequestException>(() => _verifier.ScoreAsync(new VerifierBatch(new SampleShape(1, 8, 8), new float[64], ["1"])));

        Assert.Contains("1x24x24", ex.Message);
    }
}
