using SearchOrchestrator.Denoising;
using SearchOrchestrator.Processes;
using SearchOrchestrator.Randomness;
using SearchOrchestrator.Tensors;

namespace SearchOrchestrator.Core.Tests.TestDoubles;

/// <summary>
/// Data whose every element is drawn from N(μ, σ²). Its optimal ε-predictor is analytic:
/// E[ε | x_t] = √(1−ᾱ)·(x_t − √ᾱ·μ) / (ᾱσ² + 1 − ᾱ), so samplers can be checked against closed forms.
/// </summary>
internal sealed class GaussianData(double mean, double std)
{
    public double Mean { get; } = mean;

    public double Std { get; } = std;

    public double Variance => Std * Std;

    public void OptimalEpsilon(ReadOnlySpan<float> noisy, double alphaBar, double mean, Span<float> epsilon)
    {
        var scale = Math.Sqrt(1 - alphaBar) / ((alphaBar * Variance) + 1 - alphaBar);
        var center = Math.Sqrt(alphaBar) * mean;
        for (var k = 0; k < noisy.Length; k++)
        {
            epsilon[k] = (float)(scale * (noisy[k] - center));
        }
    }

    /// <summary>Clean samples x0 from the data distribution.</summary>
    public float[] Sample(int count, ulong seed)
    {
        var values = new float[count];
        RngKey.ForSeed(seed).FillStandardNormal(NoiseUse.Prior, 0, values);
        for (var k = 0; k < count; k++)
        {
            values[k] = (float)(Mean + (Std * values[k]));
        }

        return values;
    }

    public static (double Mean, double Variance) Moments(ReadOnlySpan<float> values)
    {
        double sum = 0, squares = 0;
        foreach (var v in values)
        {
            sum += v;
        }

        var mean = sum / values.Length;
        foreach (var v in values)
        {
            squares += (v - mean) * (v - mean);
        }

        return (mean, squares / (values.Length - 1));
    }
}

/// <summary>
/// An exact ε-predicting denoiser for <see cref="GaussianData"/>: condition id c shifts the data mean to
/// μ + c, and the null id (0) predicts as if μ were 0. Counts its forward passes and batch sizes.
/// </summary>
internal sealed class GaussianDataDenoiser : IDenoiser
{
    private readonly GaussianData _data;
    private int _passes;

    public GaussianDataDenoiser(GaussianData data, int elements = 8, bool withNullCondition = true, NoiseSchedule? schedule = null)
    {
        _data = data;
        var vocabulary = new Dictionary<string, long> { ["0.5"] = 1, ["1"] = 2, ["2"] = 4 };
        Description = new DenoiserDescription
        {
            Name = "gaussian-data",
            SampleShape = new SampleShape(elements),
            Process = new GaussianProcess(schedule ?? NoiseSchedule.Linear(1000, 1e-4, 0.02), PredictionType.Epsilon),
            Conditions = new ConditionVocabulary(vocabulary.Select(p => new KeyValuePair<string, long>(p.Key, p.Value)), withNullCondition ? 0 : null),
        };
    }

    public DenoiserDescription Description { get; }

    public int Passes => _passes;

    public List<int> BatchSizes { get; } = [];

    public Task PredictAsync(DenoiserBatch batch, Memory<float> output, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        Interlocked.Increment(ref _passes);
        lock (BatchSizes)
        {
            BatchSizes.Add(batch.Count);
        }

        var n = Description.SampleShape.ElementCount;
        for (var i = 0; i < batch.Count; i++)
        {
            var alphaBar = ((GaussianProcess)Description.Process).Schedule.AlphaBar((int)batch.Times.Span[i]);
            var mean = batch.Conditions.Span[i] * 0.5;
            _data.OptimalEpsilon(batch.Samples.Span.Slice(i * n, n), alphaBar, mean, output.Span.Slice(i * n, n));
        }

        return Task.CompletedTask;
    }
}
