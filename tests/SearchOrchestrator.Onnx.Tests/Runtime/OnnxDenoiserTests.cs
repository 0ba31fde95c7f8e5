using SearchOrchestrator.Denoising;
using SearchOrchestrator.Randomness;
using SearchOrchestrator.Search;
using SearchOrchestrator.Strategies;
using SearchOrchestrator.Verifiers;

namespace SearchOrchestrator.Onnx.Tests.Runtime;

public sealed class OnnxDenoiserTests(SharedRepository shared) : IClassFixture<SharedRepository>
{
    private readonly IDenoiser _counting = shared.Repository.GetDenoiser("counting");

    private static float[] Noise(int count, int elements, ulong seed)
    {
        var values = new float[count * elements];
        RngKey.ForSeed(seed).FillStandardNormal(NoiseUse.Prior, 0, values);
        return values;
    }

    [Fact]
    public void Description_FromManifest_IsTheCountingTask()
    {
        var d = _counting.Description;

        Assert.Equal("1x24x24", d.SampleShape.ToString());
        var process = Assert.IsType<Processes.GaussianProcess>(d.Process);
        Assert.Equal(Processes.PredictionType.Epsilon, process.Prediction);
        Assert.Equal(1000, process.Schedule.TrainingSteps);
        Assert.Equal(["1", "2", "3", "4", "5", "6", "7", "8", "9"], d.Conditions.Labels);
        Assert.Equal(0, d.Conditions.NullId);
        Assert.Equal((-1f, 1f), process.SampleRange);
    }

    [Fact]
    public async Task PredictAsync_PureNoiseAtTheNoisiestStep_PredictsThatNoise()
    {
        // At t = 999, ᾱ ≈ 4e-5, so x_t is almost exactly ε: a trained ε-predictor must return it.
        const int n = 4;
        var elements = _counting.Description.SampleShape.ElementCount;
        var x = Noise(n, elements, 3);
        var output = new float[x.Length];

        await _counting.PredictAsync(new DenoiserBatch(n, x, new float[] { 999, 999, 999, 999 }, new long[] { 1, 5, 9, 0 }), output);

        var meanSquaredError = x.Zip(output, (a, b) => (a - b) * (a - b)).Average();
        Assert.True(meanSquaredError < 0.05, $"mean squared error {meanSquaredError}");
    }

    [Fact]
    public async Task PredictAsync_SampleAloneOrInABatch_GivesTheSameOutput()
    {
        var elements = _counting.Description.SampleShape.ElementCount;
        var x = Noise(5, elements, 8);
        var times = new float[] { 999, 600, 300, 100, 10 };
        var conditions = new long[] { 3, 0, 7, 9, 1 };
        var batched = new float[x.Length];
        await _counting.PredictAsync(new DenoiserBatch(5, x, times, conditions), batched);

        for (var i = 0; i < 5; i++)
        {
            var alone = new float[elements];
            await _counting.PredictAsync(new DenoiserBatch(1, x.AsMemory(i * elements, elements), times.AsMemory(i, 1), conditions.AsMemory(i, 1)), alone);
            for (var k = 0; k < elements; k++)
            {
                Assert.Equal(batched[(i * elements) + k], alone[k], 1e-5f);
            }
        }
    }

    [Fact]
    public async Task PredictAsync_CancelledToken_ThrowsOperationCanceled()
    {
        var elements = _counting.Description.SampleShape.ElementCount;
        using var cancellation = new CancellationTokenSource();
        await cancellation.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() =>
            _counting.PredictAsync(new DenoiserBatch(1, new float[elements], new float[1], new long[1]), new float[elements], cancellation.Token));
    }

    [Fact]
    public async Task PredictAsync_BatchShorterThanItsCount_ThrowsArgumentException()
    {
        await Assert.ThrowsAsync<ArgumentException>(() =>
            _counting.PredictAsync(new DenoiserBatch(2, new float[10], new float[2], new long[2]), new float[1152]));
    }

    [Fact]
    public async Task Generate_RealModel_DrawsCleanSeparateObjects()
    {
        await using var engine = new SearchEngine(shared.Repository);
        string[] conditions = ["1", "3", "5", "7", "9"];

        var results = await Task.WhenAll(conditions.Select(c => engine.RunAsync(new SearchRequest
        {
            Model = "counting",
            Condition = c,
            Steps = 50,
            Guidance = 2,
            Seed = 1,
            Strategy = new BestOfNStrategy(1),
        })));

        var counter = new ObjectCounter();
        var objects = 0;
        for (var i = 0; i < conditions.Length; i++)
        {
            var pixels = results[i].Candidates[0].Sample;
            // A plain background: most pixels are at (or within 0.1 of) the background level -1.
            var background = pixels.Count(v => v < -0.9f) / (double)pixels.Length;
            Assert.True(background > 0.6, $"sample {i}: only {background:P0} background");
            // Objects and background are well separated: few pixels sit in the grey middle.
            var grey = pixels.Count(v => v is > -0.6f and < 0.3f) / (double)pixels.Length;
            Assert.True(grey < 0.05, $"sample {i}: {grey:P1} grey pixels");
            objects += counter.Count(pixels, results[i].Candidates[0].Shape);
        }

        // 25 objects were asked for; the model miscounts, but it draws objects.
        Assert.InRange(objects, 10, 40);
    }
}
