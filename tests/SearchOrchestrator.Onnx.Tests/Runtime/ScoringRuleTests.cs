using SearchOrchestrator.Onnx.Repository;
using SearchOrchestrator.Onnx.Runtime;
using SearchOrchestrator.Tensors;
using SearchOrchestrator.Tests;
using SearchOrchestrator.Verifiers;

namespace SearchOrchestrator.Onnx.Tests.Runtime;

/// <summary>The scalar and negative-distance rules, on the tiny fixture verifiers made by models/training/make_test_verifiers.py.</summary>
public sealed class ScoringRuleTests : IDisposable
{
    private static readonly SampleShape Shape = new(1, 24, 24);
    private readonly ModelRepository _fixtures = ModelRepository.Load(new ModelRepositoryOptions
    {
        Path = Path.Combine(RepositoryPaths.Root, "tests", "SearchOrchestrator.Onnx.Tests", "Fixtures"),
        ExecutionProvider = "cpu",
    });

    public void Dispose() => _fixtures.Dispose();

    /// <summary>An image whose left half is <paramref name="left"/> and right half <paramref name="right"/>.</summary>
    private static float[] Halves(float left, float right) =>
        [.. Enumerable.Range(0, 24 * 24).Select(i => i % 24 < 12 ? left : right)];

    [Fact]
    public void Load_Fixtures_AreReady()
    {
        Assert.All(_fixtures.Models, m => Assert.True(m.IsReady, m.Error));
    }

    [Fact]
    public async Task ScoreAsync_ScalarRule_IsTheOutputValueWhateverTheCondition()
    {
        var scores = await _fixtures.GetVerifier("brightness").ScoreAsync(new VerifierBatch(Shape, Halves(1f, 0f).Concat(Halves(-1f, -1f)).ToArray(), ["anything", "7"]));

        Assert.Equal(0.5f, scores[0], 5);
        Assert.Equal(-1f, scores[1], 5);
    }

    [Fact]
    public async Task ScoreAsync_NegativeDistanceRule_IsMinusTheDistanceToTheConditionsTarget()
    {
        var bright = Halves(1f, -1f);

        var scores = await _fixtures.GetVerifier("halves").ScoreAsync(new VerifierBatch(Shape, bright.Concat(bright).Concat(bright).ToArray(), ["left", "right", "dark"]));

        Assert.Equal(0f, scores[0], 5);
        Assert.Equal(-MathF.Sqrt(8), scores[1], 5);
        Assert.Equal(-2f, scores[2], 5);
    }

    [Fact]
    public async Task ScoreAsync_NegativeDistanceWithoutATarget_ThrowsNamingTheConditions()
    {
        var ex = await Assert.ThrowsAsync<InvalidRequestException>(() => _fixtures.GetVerifier("halves").ScoreAsync(new VerifierBatch(Shape, Halves(0, 0), ["up"])));

        Assert.Equal("verifier 'halves' has targets for the conditions left, right, dark; it cannot score 'up'.", ex.Message);
    }

    [Fact]
    public async Task ScoreAsync_NoiseAwareVerifier_TakesEachSamplesTime()
    {
        var batch = new VerifierBatch(Shape, Halves(0f, 0f).Concat(Halves(1f, 1f)).ToArray(), ["a", "b"]) { Times = new float[] { 999f, 19f } };

        var scores = await _fixtures.GetVerifier("brightness-at-t").ScoreAsync(batch);

        Assert.Equal([999f, 20f], scores);
    }

    [Fact]
    public async Task ScoreAsync_NoiseAwareVerifierWithoutTimes_ThrowsNamingTheTimeInput()
    {
        var ex = await Assert.ThrowsAsync<InvalidRequestException>(() => _fixtures.GetVerifier("brightness-at-t").ScoreAsync(new VerifierBatch(Shape, Halves(0, 0), ["a"])));

        Assert.Equal("verifiers", ex.Argument);
        Assert.Equal("verifier 'brightness-at-t' takes each sample's time (input 't'), but these samples come without one (a worker relays samples without their times).", ex.Message);
    }
}
