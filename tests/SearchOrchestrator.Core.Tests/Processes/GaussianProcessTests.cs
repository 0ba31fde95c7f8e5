using SearchOrchestrator.Core.Tests.TestDoubles;
using SearchOrchestrator.Processes;
using SearchOrchestrator.Randomness;

namespace SearchOrchestrator.Core.Tests.Processes;

public sealed class GaussianProcessTests
{
    private static readonly NoiseSchedule Ddpm = NoiseSchedule.Linear(1000, 1e-4, 0.02);

    [Theory]
    [InlineData(PredictionType.Epsilon)]
    [InlineData(PredictionType.Sample)]
    [InlineData(PredictionType.V)]
    public void ToEpsilonAndSample_ExactPrediction_RecoversTheNoiseAndTheCleanSample(PredictionType type)
    {
        var process = new GaussianProcess(Ddpm, type);
        const double alphaBar = 0.37;
        float[] x0 = [0.25f, -0.8f, 0.6f], eps = [1.2f, -0.3f, 0.05f];
        var noisy = x0.Select((x, k) => (float)((Math.Sqrt(alphaBar) * x) + (Math.Sqrt(1 - alphaBar) * eps[k]))).ToArray();
        var prediction = type switch
        {
            PredictionType.Epsilon => eps,
            PredictionType.Sample => x0,
            _ => x0.Select((x, k) => (float)((Math.Sqrt(alphaBar) * eps[k]) - (Math.Sqrt(1 - alphaBar) * x))).ToArray(),
        };
        var epsilon = new float[3];
        var sample = new float[3];

        process.ToEpsilonAndSample(prediction, noisy, alphaBar, epsilon, sample);

        for (var k = 0; k < 3; k++)
        {
            Assert.Equal(eps[k], epsilon[k], 5);
            Assert.Equal(x0[k], sample[k], 5);
        }
    }

    [Fact]
    public void ToEpsilonAndSample_OutOfRangeSample_ClipsAndKeepsThePairConsistent()
    {
        var process = new GaussianProcess(Ddpm, PredictionType.Sample, (-1f, 1f));
        const double alphaBar = 0.5;
        float[] noisy = [0.3f, -0.2f];
        var epsilon = new float[2];
        var sample = new float[2];

        process.ToEpsilonAndSample([2.5f, 0.4f], noisy, alphaBar, epsilon, sample);

        Assert.Equal([1f, 0.4f], sample);
        for (var k = 0; k < 2; k++)
        {
            // x_t = √ᾱ·x̂0 + √(1−ᾱ)·ε̂ still holds after clipping.
            Assert.Equal(noisy[k], (float)((Math.Sqrt(alphaBar) * sample[k]) + (Math.Sqrt(1 - alphaBar) * epsilon[k])), 5);
        }
    }

    [Theory]
    [InlineData(0.9, 0.3)]
    [InlineData(0.5, 0.02)]
    [InlineData(0.999, 0.999)]
    public void Renoise_SamplesOfOneMarginal_BecomeSamplesOfTheNoisierMarginal(double alphaBarFrom, double alphaBarTo)
    {
        const int n = 200_000;
        var data = new GaussianData(0.5, 0.3);
        var x0 = data.Sample(n, seed: 1);
        var eps = new float[n];
        var noise = new float[n];
        RngKey.ForSeed(2).FillStandardNormal(NoiseUse.Step, 0, eps);
        RngKey.ForSeed(3).FillStandardNormal(NoiseUse.Renoise, 0, noise);
        var current = x0.Select((x, k) => (float)((Math.Sqrt(alphaBarFrom) * x) + (Math.Sqrt(1 - alphaBarFrom) * eps[k]))).ToArray();
        var renoised = new float[n];

        GaussianProcess.Renoise(current, alphaBarFrom, alphaBarTo, noise, renoised);

        var (mean, variance) = GaussianData.Moments(renoised);
        var expectedMean = Math.Sqrt(alphaBarTo) * data.Mean;
        var expectedVariance = (alphaBarTo * data.Variance) + 1 - alphaBarTo;
        Assert.InRange(mean, expectedMean - (4 * Math.Sqrt(expectedVariance / n)), expectedMean + (4 * Math.Sqrt(expectedVariance / n)));
        var varianceError = 4 * expectedVariance * Math.Sqrt(2.0 / n);
        Assert.InRange(variance, expectedVariance - varianceError, expectedVariance + varianceError);
    }

    [Fact]
    public void Renoise_ToACleanerLevel_Throws()
    {
        Assert.Throws<ArgumentException>(() => GaussianProcess.Renoise([0f], 0.3, 0.9, [0f], new float[1]));
    }
}
