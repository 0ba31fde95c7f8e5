using SearchOrchestrator.Core.Tests.TestDoubles;
using SearchOrchestrator.Processes;
using SearchOrchestrator.Randomness;

namespace SearchOrchestrator.Core.Tests.Processes;

/// <summary>
/// DDIM driven by the analytic ε-predictor of Gaussian data. Every step is then an affine map of x_t plus
/// Gaussian noise, so the mean and variance after any number of steps have a closed form to compare with.
/// </summary>
public sealed class DdimSamplerTests
{
    private const int Elements = 40_000;
    private static readonly NoiseSchedule Ddpm = NoiseSchedule.Linear(1000, 1e-4, 0.02);

    private static float[] Sample(GaussianData data, int steps, double eta, ulong seed)
    {
        var process = new GaussianProcess(Ddpm, PredictionType.Epsilon);
        var schedule = Ddpm.Steps(steps);
        var sampler = new DdimSampler(eta);
        var key = RngKey.ForSeed(seed);
        var x = new float[Elements];
        key.FillStandardNormal(NoiseUse.Prior, 0, x);
        var eps = new float[Elements];
        var x0 = new float[Elements];
        var noise = new float[Elements];
        for (var i = 0; i < steps; i++)
        {
            var from = schedule.AlphaBarAt(i);
            var to = schedule.AlphaBarAt(i + 1);
            data.OptimalEpsilon(x, from, data.Mean, eps);
            process.ToEpsilonAndSample(eps, x, from, eps, x0);
            key.FillStandardNormal(NoiseUse.Step, i, noise);
            sampler.Step(eps, x0, from, to, noise, x);
        }

        return x;
    }

    /// <summary>The exact mean and variance after DDIM(η) with the analytic predictor, from x ~ N(0, 1).</summary>
    private static (double Mean, double Variance) ClosedForm(GaussianData data, int steps, double eta)
    {
        var schedule = Ddpm.Steps(steps);
        var sampler = new DdimSampler(eta);
        double m = 0, v = 1, mu = data.Mean;
        for (var i = 0; i < steps; i++)
        {
            double a = schedule.AlphaBarAt(i), a2 = schedule.AlphaBarAt(i + 1);
            var k = Math.Sqrt(1 - a) / ((a * data.Variance) + 1 - a);
            var sigma = sampler.Sigma(a, a2);
            var c = Math.Sqrt(1 - a2 - (sigma * sigma));
            var p = (Math.Sqrt(a2) * (1 - (Math.Sqrt(1 - a) * k)) / Math.Sqrt(a)) + (c * k);
            var q = (Math.Sqrt(a2) * Math.Sqrt(1 - a) * k * mu) - (c * k * Math.Sqrt(a) * mu);
            m = (p * m) + q;
            v = (p * p * v) + (sigma * sigma);
        }

        return (m, v);
    }

    private static void AssertMoments(float[] x, double mean, double variance, double meanSlack = 0, double relativeVarianceSlack = 0)
    {
        var (actualMean, actualVariance) = GaussianData.Moments(x);
        // Four standard errors of the sample mean and variance, plus any stated discretisation slack.
        var meanTolerance = (4 * Math.Sqrt(variance / x.Length)) + meanSlack;
        var varianceTolerance = (4 * variance * Math.Sqrt(2.0 / x.Length)) + (relativeVarianceSlack * variance);
        Assert.InRange(actualMean, mean - meanTolerance, mean + meanTolerance);
        Assert.InRange(actualVariance, variance - varianceTolerance, variance + varianceTolerance);
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(0.5)]
    [InlineData(1.0)]
    public void Step_FewStepsWithAnalyticDenoiser_MatchesClosedFormMoments(double eta)
    {
        // Few steps and a narrow distribution make DDIM's discretisation visible (the variance lands 10–30%
        // below σ²), so this checks every coefficient of the update, not just its limit.
        var data = new GaussianData(0.5, 0.3);

        var x = Sample(data, steps: 20, eta, seed: 11);

        var (mean, variance) = ClosedForm(data, 20, eta);
        Assert.True(variance < 0.9 * data.Variance, "the closed form should show the few-step variance deficit");
        AssertMoments(x, mean, variance);
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(1.0)]
    public void Step_EveryTrainingStepWithAnalyticDenoiser_ReproducesDataMeanAndVariance(double eta)
    {
        var data = new GaussianData(0.5, 0.8);

        var x = Sample(data, steps: 1000, eta, seed: 5);

        // At N = T = 1000 the closed form leaves at most 0.003 of mean bias and 1.1% of variance deficit
        // (the start is N(0, 1) rather than the true ᾱ_999 marginal, and β̃ is not the exact reverse variance).
        AssertMoments(x, data.Mean, data.Variance, meanSlack: 0.003, relativeVarianceSlack: 0.011);
    }

    [Fact]
    public void Sigma_EtaOneOnAdjacentTrainingSteps_IsTheDdpmPosteriorStd()
    {
        var sampler = new DdimSampler(1.0);
        const int t = 500;

        var sigma = sampler.Sigma(Ddpm.AlphaBar(t), Ddpm.AlphaBar(t - 1));

        var posteriorVariance = (1 - Ddpm.AlphaBar(t - 1)) / (1 - Ddpm.AlphaBar(t)) * Ddpm.Betas[t];
        Assert.Equal(Math.Sqrt(posteriorVariance), sigma, 12);
    }

    [Fact]
    public void Step_EtaZero_IgnoresNoise()
    {
        var sampler = new DdimSampler(0);
        var withNoise = new float[2];
        var withoutNoise = new float[2];

        sampler.Step([0.1f, -0.2f], [0.5f, 0.3f], 0.4, 0.6, [5f, 5f], withNoise);
        sampler.Step([0.1f, -0.2f], [0.5f, 0.3f], 0.4, 0.6, [], withoutNoise);

        Assert.False(sampler.IsStochastic);
        Assert.Equal(withoutNoise, withNoise);
    }

    [Theory]
    [InlineData(-0.1)]
    [InlineData(1.5)]
    [InlineData(double.NaN)]
    public void Constructor_EtaOutsideZeroToOne_ThrowsNamingEta(double eta)
    {
        var ex = Assert.Throws<InvalidRequestException>(() => new DdimSampler(eta));

        Assert.Equal("eta", ex.Argument);
    }
}
