using SearchOrchestrator.Links;
using SearchOrchestrator.Tensors;
using SearchOrchestrator.Verifiers;

namespace SearchOrchestrator.Scheduling;

/// <summary>The batcher of one verifier: queued x0-predictions from any search are scored together.</summary>
internal sealed class VerifierBatcher : IAsyncDisposable
{
    private readonly Pump _pump;

    /// <summary>Creates the batcher and starts its pump.</summary>
    public VerifierBatcher(IVerifier verifier, BatchingOptions options, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(verifier);
        ArgumentNullException.ThrowIfNull(options);
        _pump = new Pump(verifier, options, time ?? TimeProvider.System);
    }

    /// <summary>The verifier's name.</summary>
    public string Name => _pump.Verifier.Name;

    /// <summary>The verifier's kind (<see cref="VerifierKinds"/>).</summary>
    public string Kind => _pump.Verifier.Kind;

    /// <summary>
    /// Scores one sample given its condition label and, when known, the model time <paramref name="time"/> of its
    /// x0-prediction. For a remote verifier, <c>Transfer</c> is this sample's share of what its call moved (the call's
    /// bytes split over its samples so that the shares add up to the call exactly); zero for a verifier of this process.
    /// </summary>
    /// <exception cref="VerifierFailedException">The verifier threw or returned a non-finite score.</exception>
    public async Task<(float Score, BatchTiming Timing, Transfer Transfer)> ScoreAsync(SampleShape shape, float[] sample, string condition, float? time = null, string? text = null, CancellationToken cancellationToken = default)
    {
        var work = new Work(shape, sample, condition, time, text, cancellationToken);
        var timing = await _pump.SubmitAsync(work).ConfigureAwait(false);
        return (work.Score, timing, work.Transfer);
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync() => _pump.DisposeAsync();

    /// <summary>Share <paramref name="index"/> of <paramref name="parts"/> of a call's transfer: whole bytes and ticks, the remainder to the first shares.</summary>
    private static Transfer ShareOf(Transfer transfer, int index, int parts)
    {
        static long Part(long total, int index, int parts) => (total / parts) + (index < total % parts ? 1 : 0);
        return new Transfer(Part(transfer.BytesSent, index, parts), Part(transfer.BytesReceived, index, parts), TimeSpan.FromTicks(Part(transfer.Time.Ticks, index, parts)));
    }

    private sealed class Work(SampleShape shape, float[] sample, string condition, float? time, string? text, CancellationToken cancellationToken) : BatchWork(1, cancellationToken)
    {
        public string? Text { get; } = text;

        public SampleShape Shape { get; } = shape;

        public float[] Sample { get; } = sample;

        public string Condition { get; } = condition;

        public float? Time { get; } = time;

        public float Score { get; set; }

        public Transfer Transfer { get; set; }
    }

    private sealed class Pump(IVerifier verifier, BatchingOptions options, TimeProvider time) : BatchPump<Work>(verifier.Name, options, time)
    {
        public IVerifier Verifier => verifier;

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

                // Times go along only when every sample has one (a worker relaying samples does not know them).
                var call = new VerifierBatch(shape, samples, [.. items.Select(w => w.Condition)])
                {
                    Times = items.All(w => w.Time is not null) ? items.Select(w => w.Time!.Value).ToArray() : ReadOnlyMemory<float>.Empty,
                    Texts = items.All(w => w.Text is not null) ? [.. items.Select(w => w.Text!)] : null,
                };
                float[] scores;
                var transfer = default(Transfer);
                try
                {
                    (scores, transfer) = verifier is IRemoteVerifier remote
                        ? await remote.ScoreRemotelyAsync(call, passCancellation).ConfigureAwait(false)
                        : (await verifier.ScoreAsync(call, passCancellation).ConfigureAwait(false), transfer);
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
                    items[i].Transfer = ShareOf(transfer, i, items.Count);
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
