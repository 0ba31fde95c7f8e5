using SearchOrchestrator.Denoising;
using SearchOrchestrator.Processes;
using SearchOrchestrator.Search;
using SearchOrchestrator.Tensors;
using SearchOrchestrator.Verifiers;

namespace SearchOrchestrator.Core.Tests.TestDoubles;

/// <summary>An <see cref="IModelProvider"/> over fixed denoisers and verifiers.</summary>
internal sealed class FakeModels(IEnumerable<IDenoiser> denoisers, IEnumerable<IVerifier> verifiers) : IModelProvider
{
    private readonly Dictionary<string, IDenoiser> _denoisers = denoisers.ToDictionary(d => d.Description.Name);
    private readonly Dictionary<string, IVerifier> _verifiers = verifiers.ToDictionary(v => v.Name);

    public FakeModels(IDenoiser denoiser, params IVerifier[] verifiers)
        : this([denoiser], verifiers)
    {
    }

    public IDenoiser GetDenoiser(string name) =>
        _denoisers.TryGetValue(name, out var d) ? d : throw new ModelNotFoundException(name, $"no denoiser named '{name}'.");

    public IVerifier GetVerifier(string name) =>
        _verifiers.TryGetValue(name, out var v) ? v : throw new ModelNotFoundException(name, $"no verifier named '{name}'.");
}

/// <summary>Scores a sample by its mean (higher is better), or by how close the mean is to a target.</summary>
internal sealed class MeanVerifier(string name = "mean", double? target = null) : IVerifier
{
    private int _calls;

    public string Name { get; } = name;

    public int Calls => _calls;

    public Task<float[]> ScoreAsync(VerifierBatch batch, CancellationToken cancellationToken = default)
    {
        Interlocked.Add(ref _calls, batch.Count);
        var scores = new float[batch.Count];
        for (var i = 0; i < batch.Count; i++)
        {
            var sample = batch.Sample(i);
            var mean = 0.0;
            foreach (var v in sample)
            {
                mean += v;
            }

            mean /= sample.Length;
            scores[i] = (float)(target is { } t ? -Math.Abs(mean - t) : mean);
        }

        return Task.FromResult(scores);
    }
}

/// <summary>A verifier that throws, or returns NaN, as configured.</summary>
internal sealed class BrokenVerifier(string name, bool returnNaN) : IVerifier
{
    public string Name { get; } = name;

    public Task<float[]> ScoreAsync(VerifierBatch batch, CancellationToken cancellationToken = default) =>
        returnNaN ? Task.FromResult(Enumerable.Repeat(float.NaN, batch.Count).ToArray()) : throw new InvalidOperationException("model file corrupted");
}

/// <summary>
/// A denoiser whose outcome is decided at a known step: until model time reaches the decision time its x0-prediction
/// is 0 (nothing decided); from then on it is sign(mean(x_t)) everywhere. Siblings forked before the decision step
/// can still end with either sign; siblings forked at or after it all end alike.
/// </summary>
internal sealed class DecidedAtStepDenoiser : IDenoiser
{
    private readonly int _decisionTimestep;

    public DecidedAtStepDenoiser(int steps, int decisionStep, int elements = 1024)
    {
        var schedule = NoiseSchedule.Linear(1000, 1e-4, 0.02);
        _decisionTimestep = (int)schedule.Steps(steps).TimestepAt(decisionStep);
        Description = new DenoiserDescription
        {
            Name = "decided",
            SampleShape = new SampleShape(elements),
            Process = new GaussianProcess(schedule, PredictionType.Sample),
            Conditions = new ConditionVocabulary([new("x", 1)], nullId: 0),
        };
    }

    public DenoiserDescription Description { get; }

    public Task PredictAsync(DenoiserBatch batch, Memory<float> output, CancellationToken cancellationToken = default)
    {
        var n = Description.SampleShape.ElementCount;
        for (var i = 0; i < batch.Count; i++)
        {
            var x = batch.Samples.Span.Slice(i * n, n);
            var decided = batch.Times.Span[i] <= _decisionTimestep;
            var mean = 0.0;
            foreach (var v in x)
            {
                mean += v;
            }

            output.Span.Slice(i * n, n).Fill(decided ? (mean >= 0 ? 1f : -1f) : 0f);
        }

        return Task.CompletedTask;
    }
}

/// <summary>Wraps a denoiser and holds every forward pass until the test releases it.</summary>
internal sealed class GatedDenoiser(IDenoiser inner) : IDenoiser
{
    private readonly SemaphoreSlim _gate = new(0);
    private readonly SemaphoreSlim _entered = new(0);

    public DenoiserDescription Description => inner.Description;

    public void Release(int passes = 1) => _gate.Release(passes);

    public Task<bool> WaitForPassAsync() => _entered.WaitAsync(TimeSpan.FromSeconds(30));

    /// <summary>Completes when a held pass is terminated by its cancellation.</summary>
    public Task PassCancelled => _cancelled.Task;

    private readonly TaskCompletionSource _cancelled = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public async Task PredictAsync(DenoiserBatch batch, Memory<float> output, CancellationToken cancellationToken = default)
    {
        _entered.Release();
        try
        {
            await _gate.WaitAsync(cancellationToken);
        }
        catch (OperationCanceledException)
        {
            _cancelled.TrySetResult();
            throw;
        }

        await inner.PredictAsync(batch, output, cancellationToken);
    }
}

/// <summary>Several instances of one denoiser model, as the repository makes with Models:Instances.</summary>
internal sealed class MultiInstanceDenoiser(params IDenoiser[] instances) : IMultiInstanceDenoiser
{
    public IReadOnlyList<IDenoiser> Instances => instances;

    public IDenoiser? LonePass { get; init; }

    public DenoiserDescription Description => instances[0].Description;

    public Task PredictAsync(DenoiserBatch batch, Memory<float> output, CancellationToken cancellationToken = default) =>
        instances[0].PredictAsync(batch, output, cancellationToken);
}
