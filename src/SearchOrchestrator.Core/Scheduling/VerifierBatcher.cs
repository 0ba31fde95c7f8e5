using SearchOrchestrator.Tensors;
using SearchOrchestrator.Verifiers;

namespace SearchOrchestrator.Scheduling;

/// <summary>The batcher of one verifier: queued x0-predictions from any search are scored together.</summary>
public sealed class VerifierBatcher : IAsyncDisposable
{
    private readonly Pump _pump;

    /// <summary>Creates the batcher and starts its pump.</summary>
    public VerifierBatcher(IVerifier verifier, BatchingOptions options, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(verifier);
        ArgumentNullException.ThrowIfNull(options);
        _pump = new Pump(verifier, options, time ?? TimeProvider.System);
    }

    /// <summary>Scores one sample given its condition label.</summary>
    /// <exception cref="VerifierFailedException">The verifier threw or returned a non-finite score.</exception>
    public async Task<(float Score, BatchTiming Timing)> ScoreAsync(SampleShape shape, float[] sample, string condition, CancellationToken cancellationToken = default)
    {
        var work = new Work(shape, sample, condition, cancellationToken);
        var timing = await _pump.SubmitAsync(work).ConfigureAwait(false);
        return (work.Score, timing);
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync() => _pump.DisposeAsync();

    private sealed class Work(SampleShape shape, float[] sample, string condition, CancellationToken cancellationToken) : BatchWork(1, cancellationToken)
    {
        public SampleShape Shape { get; } = shape;

        public float[] Sample { get; } = sample;

        public string Condition { get; } = condition;

        public float Score { get; set; }
    }

    private sealed class Pump(IVerifier verifier, BatchingOptions options, TimeProvider time) : BatchPump<Work>(verifier.Name, options, time)
    {
        public new Task<BatchTiming> SubmitAsync(Work work) => base.SubmitAsync(work);

        protected override async Task ExecuteAsync(IReadOnlyList<Work> batch, int lane, CancellationToken passCancellation)
        {
            // Items of one batch may come from models of different shapes; each shape is scored as its own call.
            foreach (var group in batch.GroupBy(w => w.Shape))
            {
                var items = group.ToList();
                var shape = group.Key;
                var samples = new float[items.Count * shape.ElementCount];
                for (var i = 0; i < items.Count; i++)
                {
                    items[i].Sample.AsSpan().CopyTo(samples.AsSpan(i * shape.ElementCount));
                }

                float[] scores;
                try
                {
                    scores = await verifier.ScoreAsync(new VerifierBatch(shape, samples, [.. items.Select(w => w.Condition)]), passCancellation).ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is not OperationCanceledException and not InvalidRequestException)
                {
                    throw new VerifierFailedException(verifier.Name, $"verifier '{verifier.Name}' failed: {ex.Message}", ex);
                }

                if (scores.Length != items.Count)
                {
                    throw new VerifierFailedException(verifier.Name, $"verifier '{verifier.Name}' returned {scores.Length} scores for {items.Count} samples.");
                }

                for (var i = 0; i < items.Count; i++)
                {
                    items[i].Score = scores[i];
                    if (!float.IsFinite(scores[i]))
                    {
                        items[i].Error = new VerifierFailedException(verifier.Name, $"verifier '{verifier.Name}' returned a non-finite score ({scores[i]}) for a sample of condition {CallerInput.Quote(items[i].Condition)}.");
                    }
                }
            }
        }
    }
}

/// <summary>A verifier that threw or returned a bad score; it fails the searches that used it, not the service.</summary>
public sealed class VerifierFailedException : Exception
{
    /// <summary>Creates the exception for the named verifier.</summary>
    public VerifierFailedException(string verifier, string message, Exception? inner = null)
        : base(message, inner)
    {
        Verifier = verifier;
    }

    /// <summary>The verifier's name.</summary>
    public string Verifier { get; }
}
