using SearchOrchestrator.Denoising;
using SearchOrchestrator.Processes;
using SearchOrchestrator.Randomness;
using SearchOrchestrator.Tensors;

namespace SearchOrchestrator.Sampling;

/// <summary>A batch of independent trajectories to run from pure noise to clean samples.</summary>
public sealed record SamplingRequest
{
    /// <summary>One condition label per sample; the number of labels is the number of samples.</summary>
    public required IReadOnlyList<string> Conditions { get; init; }

    /// <summary>N, the number of sampling steps.</summary>
    public required int Steps { get; init; }

    /// <summary>Classifier-free guidance scale w (1 = none). Default 1.</summary>
    public double Guidance { get; init; } = 1.0;

    /// <summary>DDIM η in [0, 1] (0 = deterministic). Default 0.</summary>
    public double Eta { get; init; }

    /// <summary>The request seed; sample i's noise is keyed by (seed, i).</summary>
    public ulong Seed { get; init; }

    /// <summary>The most samples one forward pass may hold (guided samples count twice). Default 64.</summary>
    public int MaxBatchSize { get; init; } = 64;
}

/// <summary>Clean samples and what they cost.</summary>
public sealed record SamplingResult
{
    /// <summary>The shape of one sample.</summary>
    public required SampleShape Shape { get; init; }

    /// <summary>The samples, stacked along axis 0.</summary>
    public required float[] Samples { get; init; }

    /// <summary>The condition label of each sample.</summary>
    public required IReadOnlyList<string> Conditions { get; init; }

    /// <summary>Denoiser evaluations: one per sample per step (a guided step's two passes count once).</summary>
    public required long Nfe { get; init; }

    /// <summary>Forward passes run (each over a batch).</summary>
    public required int ForwardPasses { get; init; }

    /// <summary>Sample <paramref name="index"/>'s values.</summary>
    public ReadOnlyMemory<float> Sample(int index) => Samples.AsMemory(index * Shape.ElementCount, Shape.ElementCount);
}

/// <summary>
/// Runs independent trajectories through one denoiser: every step of every sample in as few forward passes as
/// the batch limit allows, with DDIM(η) and classifier-free guidance. Sample i is keyed by (seed, i), so its
/// result does not depend on how many other samples ran beside it.
/// </summary>
public static class DenoisingLoop
{
    /// <summary>Runs the request; progress reports completed sample-steps out of samples × steps.</summary>
    public static async Task<SamplingResult> RunAsync(IDenoiser denoiser, SamplingRequest request, IProgress<long>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(denoiser);
        ArgumentNullException.ThrowIfNull(request);
        var description = denoiser.Description;
        var process = description.Process;
        var steps = process.Schedule.Steps(request.Steps);
        var sampler = new DdimSampler(request.Eta);
        ClassifierFreeGuidance.Validate(request.Guidance, description.Conditions, description.Name);
        if (request.Conditions.Count == 0)
        {
            throw new InvalidRequestException("samples", "at least one sample is needed.");
        }

        var guided = ClassifierFreeGuidance.NeedsUnconditional(request.Guidance);
        var perPass = guided ? request.MaxBatchSize / 2 : request.MaxBatchSize;
        if (perPass < 1)
        {
            throw new InvalidRequestException("max_batch_size", $"max batch size must be at least {(guided ? 2 : 1)}, got {request.MaxBatchSize}.");
        }

        var ids = request.Conditions.Select(label => description.Conditions.Resolve(label, description.Name)).ToArray();
        var shape = description.SampleShape;
        var samples = new float[request.Conditions.Count * shape.ElementCount];
        var seedKey = RngKey.ForSeed(request.Seed);
        var passes = 0;
        long done = 0;
        for (var first = 0; first < ids.Length; first += perPass)
        {
            var count = Math.Min(perPass, ids.Length - first);
            var chunk = samples.AsMemory(first * shape.ElementCount, count * shape.ElementCount);
            var keys = Enumerable.Range(first, count).Select(seedKey.Child).ToArray();
            for (var k = 0; k < count; k++)
            {
                keys[k].FillStandardNormal(NoiseUse.Prior, 0, chunk.Span.Slice(k * shape.ElementCount, shape.ElementCount));
            }

            var trajectory = new ChunkTrajectory(denoiser, shape, keys, ids.AsMemory(first, count), request.Guidance, guided);
            for (var i = 0; i < steps.Count; i++)
            {
                await trajectory.StepAsync(chunk, steps, i, sampler, cancellationToken).ConfigureAwait(false);
                passes++;
                done += count;
                progress?.Report(done);
            }
        }

        return new SamplingResult
        {
            Shape = shape,
            Samples = samples,
            Conditions = request.Conditions,
            Nfe = (long)ids.Length * steps.Count,
            ForwardPasses = passes,
        };
    }

    /// <summary>The buffers of one chunk's forward passes, reused across its steps.</summary>
    private sealed class ChunkTrajectory
    {
        private readonly IDenoiser _denoiser;
        private readonly SampleShape _shape;
        private readonly RngKey[] _keys;
        private readonly double _guidance;
        private readonly bool _guided;
        private readonly int _rows;
        private readonly float[] _input;
        private readonly float[] _output;
        private readonly float[] _times;
        private readonly long[] _conditions;
        private readonly float[] _epsilon;
        private readonly float[] _sample;
        private readonly float[] _noise;
        private readonly float[] _guidedPrediction;

        public ChunkTrajectory(IDenoiser denoiser, SampleShape shape, RngKey[] keys, ReadOnlyMemory<long> ids, double guidance, bool guided)
        {
            _denoiser = denoiser;
            _shape = shape;
            _keys = keys;
            _guidance = guidance;
            _guided = guided;
            // A guided sample takes two rows: its condition, then (after every conditional row) the null condition.
            _rows = guided ? keys.Length * 2 : keys.Length;
            _input = new float[_rows * shape.ElementCount];
            _output = new float[_rows * shape.ElementCount];
            _times = new float[_rows];
            _conditions = new long[_rows];
            ids.Span.CopyTo(_conditions);
            if (guided)
            {
                _conditions.AsSpan(keys.Length).Fill(denoiser.Description.Conditions.NullId!.Value);
            }

            _epsilon = new float[shape.ElementCount];
            _sample = new float[shape.ElementCount];
            _noise = new float[shape.ElementCount];
            _guidedPrediction = new float[shape.ElementCount];
        }

        public async Task StepAsync(Memory<float> states, StepSchedule steps, int stepIndex, DdimSampler sampler, CancellationToken cancellationToken)
        {
            var count = _keys.Length;
            var n = _shape.ElementCount;
            states.Span.CopyTo(_input);
            if (_guided)
            {
                states.Span.CopyTo(_input.AsSpan(count * n));
            }

            Array.Fill(_times, steps.TimestepAt(stepIndex));
            await _denoiser.PredictAsync(new DenoiserBatch(_rows, _input, _times, _conditions), _output, cancellationToken).ConfigureAwait(false);

            var from = steps.AlphaBarAt(stepIndex);
            var to = steps.AlphaBarAt(stepIndex + 1);
            var stochastic = sampler.Sigma(from, to) > 0;
            for (var k = 0; k < count; k++)
            {
                var state = states.Span.Slice(k * n, n);
                ReadOnlySpan<float> prediction = _output.AsSpan(k * n, n);
                if (_guided)
                {
                    ClassifierFreeGuidance.Combine(prediction, _output.AsSpan((count + k) * n, n), _guidance, _guidedPrediction);
                    prediction = _guidedPrediction;
                }

                _denoiser.Description.Process.ToEpsilonAndSample(prediction, state, from, _epsilon, _sample);
                if (stochastic)
                {
                    _keys[k].FillStandardNormal(NoiseUse.Step, stepIndex, _noise);
                }

                sampler.Step(_epsilon, _sample, from, to, _noise, state);
            }
        }
    }
}
