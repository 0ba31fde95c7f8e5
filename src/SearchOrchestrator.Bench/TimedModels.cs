using System.Diagnostics;
using SearchOrchestrator.Denoising;
using SearchOrchestrator.Search;
using SearchOrchestrator.Verifiers;

namespace SearchOrchestrator.Bench;

/// <summary>
/// Wraps a model provider so every forward pass of every denoiser and verifier is timed: the benches split a
/// search's wall time into forward passes, sampler updates, verifier passes and the rest from these counters.
/// The engine keys its batchers by model instance, so each wrapper is created once and handed out every time.
/// </summary>
internal sealed class TimedModels(IModelProvider inner) : IModelProvider
{
    private readonly Dictionary<string, TimedDenoiser> _denoisers = [];
    private readonly Dictionary<string, TimedVerifier> _verifiers = [];
    private readonly Dictionary<string, PipelineStages?> _stages = [];

    /// <summary>Forward passes of every denoiser so far.</summary>
    public PassCounter Denoising { get; } = new();

    /// <summary>Passes of every verifier so far.</summary>
    public PassCounter Verifying { get; } = new();

    public IDenoiser GetDenoiser(string name)
    {
        lock (_denoisers)
        {
            if (!_denoisers.TryGetValue(name, out var timed))
            {
                timed = new TimedDenoiser(inner.GetDenoiser(name), Denoising);
                _denoisers[name] = timed;
            }

            return timed;
        }
    }

    /// <summary>A pipeline's stages, its latent denoiser's passes timed into <see cref="Denoising"/> (the text encoder and decoder untimed).</summary>
    public PipelineStages? GetStages(string name)
    {
        lock (_stages)
        {
            if (!_stages.TryGetValue(name, out var timed))
            {
                timed = inner.GetStages(name) is { } stages
                    ? stages with { Denoisers = [.. stages.Denoisers.Select(d => new TimedPromptDenoiser(d, Denoising))] }
                    : null;
                _stages[name] = timed;
            }

            return timed;
        }
    }

    public IVerifier GetVerifier(string name)
    {
        lock (_verifiers)
        {
            if (!_verifiers.TryGetValue(name, out var timed))
            {
                timed = new TimedVerifier(inner.GetVerifier(name), Verifying);
                _verifiers[name] = timed;
            }

            return timed;
        }
    }

    private sealed class TimedDenoiser(IDenoiser inner, PassCounter counter) : IMultiInstanceDenoiser
    {
        public DenoiserDescription Description => inner.Description;

        private IReadOnlyList<IDenoiser>? _instances;

        /// <summary>Each instance of the inner denoiser, timed into the same counter (this one, when it has one).</summary>
        public IReadOnlyList<IDenoiser> Instances => _instances ??= inner is IMultiInstanceDenoiser { Instances.Count: > 1 } multi
            ? [.. multi.Instances.Select(i => new TimedDenoiser(i, counter))]
            : [this];

        private IDenoiser? _lonePass;

        /// <summary>The inner denoiser's lone-pass session, timed into the same counter.</summary>
        public IDenoiser? LonePass => _lonePass ??= inner is IMultiInstanceDenoiser { LonePass: { } lone } ? new TimedDenoiser(lone, counter) : null;

        public async Task PredictAsync(DenoiserBatch batch, Memory<float> output, CancellationToken cancellationToken = default)
        {
            var started = Stopwatch.GetTimestamp();
            await inner.PredictAsync(batch, output, cancellationToken).ConfigureAwait(false);
            counter.Add(batch.Count, Stopwatch.GetTimestamp() - started);
        }
    }

    private sealed class TimedPromptDenoiser(IPromptDenoiser inner, PassCounter counter) : IPromptDenoiser
    {
        public DenoiserDescription Description => inner.Description;

        public TextEncoderDescription Prompt => inner.Prompt;

        public async Task PredictAsync(PromptDenoiserBatch batch, Memory<float> output, CancellationToken cancellationToken = default)
        {
            var started = Stopwatch.GetTimestamp();
            await inner.PredictAsync(batch, output, cancellationToken).ConfigureAwait(false);
            counter.Add(batch.Count, Stopwatch.GetTimestamp() - started);
        }
    }

    private sealed class TimedVerifier(IVerifier inner, PassCounter counter) : IVerifier
    {
        public string Name => inner.Name;

        public async Task<float[]> ScoreAsync(VerifierBatch batch, CancellationToken cancellationToken = default)
        {
            var started = Stopwatch.GetTimestamp();
            var scores = await inner.ScoreAsync(batch, cancellationToken).ConfigureAwait(false);
            counter.Add(batch.Count, Stopwatch.GetTimestamp() - started);
            return scores;
        }
    }
}

/// <summary>Passes, rows and time of one kind of forward pass, read as snapshots and subtracted.</summary>
internal sealed class PassCounter
{
    private long _passes;
    private long _rows;
    private long _ticks;

    public void Add(int rows, long ticks)
    {
        Interlocked.Increment(ref _passes);
        Interlocked.Add(ref _rows, rows);
        Interlocked.Add(ref _ticks, ticks);
    }

    public PassTotals Read() => new(Interlocked.Read(ref _passes), Interlocked.Read(ref _rows), TimeSpan.FromSeconds((double)Interlocked.Read(ref _ticks) / Stopwatch.Frequency));
}

/// <summary>Totals of a <see cref="PassCounter"/>; subtract two to get what happened between them.</summary>
internal readonly record struct PassTotals(long Passes, long Rows, TimeSpan Time)
{
    public static PassTotals operator -(PassTotals a, PassTotals b) => new(a.Passes - b.Passes, a.Rows - b.Rows, a.Time - b.Time);

    public double MeanRows => Passes == 0 ? 0 : (double)Rows / Passes;
}
