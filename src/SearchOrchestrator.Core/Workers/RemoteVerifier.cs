using SearchOrchestrator.Links;
using SearchOrchestrator.Tensors;
using SearchOrchestrator.Verifiers;

namespace SearchOrchestrator.Workers;

/// <summary>
/// A verifier the pool's workers serve, as an <see cref="IVerifier"/> like any other: a batch is scored on the least
/// busy worker in rotation that hosts it (one Verify call per condition), and on the next one when that worker fails.
/// What it moves is on the worker's link (<see cref="LinkCostModel.Usage"/>) and, per batch, in the search's cost account.
/// </summary>
internal sealed class RemoteVerifier : IRemoteVerifier
{
    private readonly WorkerPool _pool;

    /// <summary>The verifier <paramref name="name"/> as <paramref name="pool"/>'s workers serve it.</summary>
    public RemoteVerifier(string name, WorkerPool pool)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(pool);
        Name = name;
        _pool = pool;
    }

    /// <inheritdoc />
    public string Name { get; }

    /// <inheritdoc />
    public string Kind => VerifierKinds.Worker;

    /// <summary>The links of the workers that host it.</summary>
    public IReadOnlyList<LinkCostModel> Links => [.. _pool.Workers.Where(w => w.HostsVerifier(Name) && w.Link is not null).Select(w => w.Link!)];

    /// <inheritdoc />
    /// <exception cref="NoBackendException">No worker in rotation hosts the verifier, or every one that does failed.</exception>
    public async Task<float[]> ScoreAsync(VerifierBatch batch, CancellationToken cancellationToken = default) =>
        (await ScoreRemotelyAsync(batch, cancellationToken).ConfigureAwait(false)).Scores;

    /// <inheritdoc />
    /// <exception cref="NoBackendException">No worker in rotation hosts the verifier, or every one that does failed.</exception>
    public async Task<(float[] Scores, Transfer Transfer)> ScoreRemotelyAsync(VerifierBatch batch, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(batch);
        var scores = new float[batch.Count];
        var moved = default(Transfer);
        foreach (var group in Enumerable.Range(0, batch.Count).GroupBy(i => batch.Conditions[i], StringComparer.Ordinal))
        {
            var rows = group.ToList();
            var times = batch.Times.Length == 0 ? null : rows.Select(i => batch.Times.Span[i]).ToArray();
            var (scored, transfer) = await ScoreOnAWorkerAsync(group.Key, batch.Shape, [.. rows.Select(i => batch.Sample(i).ToArray())], batch.Texts is { } texts ? [.. rows.Select(i => texts[i])] : null, times, cancellationToken).ConfigureAwait(false);
            moved += transfer;
            for (var k = 0; k < rows.Count; k++)
            {
                scores[rows[k]] = scored[k];
            }
        }

        return (scores, moved);
    }

    private async Task<(float[] Scores, Transfer Transfer)> ScoreOnAWorkerAsync(string condition, SampleShape shape, IReadOnlyList<float[]> samples, IReadOnlyList<string>? texts, IReadOnlyList<float>? times, CancellationToken cancellationToken)
    {
        string? lastFailure = null;
        foreach (var worker in _pool.Workers.Where(w => w.IsAvailable && w.HostsVerifier(Name)).OrderBy(w => w.QueuedRows))
        {
            try
            {
                var (scores, transfer) = await worker.VerifyAsync(Name, condition, shape, samples, texts, times, cancellationToken).ConfigureAwait(false);
                if (scores.Length == samples.Count)
                {
                    return (scores, transfer);
                }

                lastFailure = $" {worker.Name}: answered {scores.Length} scores for {samples.Count} samples.";
            }
            catch (Exception ex) when (!cancellationToken.IsCancellationRequested && ex is WorkerUnavailableException or WorkerDataException)
            {
                lastFailure = $" {worker.Name}: {ex.Message}";
            }
        }

        throw new NoBackendException($"No worker in rotation can run the verifier '{Name}' now.{lastFailure}");
    }
}
