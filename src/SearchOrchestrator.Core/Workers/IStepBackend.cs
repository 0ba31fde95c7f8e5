using SearchOrchestrator.Scheduling;

namespace SearchOrchestrator.Workers;

/// <summary>
/// A place a node's steps run: this process's ONNX Runtime (<see cref="LocalBackend"/>), a remote worker
/// (<see cref="WorkerBackend"/>), or a stateless model server the pool holds (<see cref="IStatelessBackend"/>).
/// Placement compares backends by <see cref="PlacementPolicy.Estimate"/>.
/// </summary>
public interface IStepBackend
{
    /// <summary><c>local</c>, or the worker's endpoint.</summary>
    string Name { get; }

    /// <summary>False while the backend is out of rotation.</summary>
    bool IsAvailable { get; }

    /// <summary>Rows queued or running now.</summary>
    int QueuedRows { get; }

    /// <summary>The most rows one pass holds.</summary>
    int MaxBatchSize { get; }

    /// <summary>Measured forward-pass time by batch rows.</summary>
    ComputeCostModel Compute { get; }

    /// <summary>The link to the backend; null for this process.</summary>
    LinkCostModel? Link { get; }

    /// <summary>Runs one step; the request's state and prediction buffers receive the result.</summary>
    Task<StepOutcome> StepAsync(StepRequest step, TrajectorySettings settings, CancellationToken cancellationToken = default);
}

/// <summary>What one step cost: the batch it joined and what it moved over a link.</summary>
public readonly record struct StepOutcome(BatchTiming Timing, Transfer Transfer);

/// <summary>This process's ONNX Runtime session for one model, as a backend: its batcher plus measured pass times.</summary>
public sealed class LocalBackend : IStepBackend
{
    private readonly DenoiserBatcher _batcher;
    private readonly int _maxBatchSize;
    private int _queuedRows;
    private long _lastBatch;

    /// <summary>Wraps <paramref name="batcher"/>.</summary>
    public LocalBackend(DenoiserBatcher batcher, int maxBatchSize)
    {
        ArgumentNullException.ThrowIfNull(batcher);
        _batcher = batcher;
        _maxBatchSize = maxBatchSize;
    }

    /// <inheritdoc />
    public string Name => "local";

    /// <inheritdoc />
    public bool IsAvailable => true;

    /// <inheritdoc />
    public int QueuedRows => Volatile.Read(ref _queuedRows);

    /// <inheritdoc />
    public int MaxBatchSize => _maxBatchSize;

    /// <inheritdoc />
    public ComputeCostModel Compute { get; } = new(TimeSpan.FromMilliseconds(1), TimeSpan.FromMilliseconds(1));

    /// <inheritdoc />
    public LinkCostModel? Link => null;

    /// <summary>The batcher steps run on.</summary>
    public DenoiserBatcher Batcher => _batcher;

    /// <inheritdoc />
    public async Task<StepOutcome> StepAsync(StepRequest step, TrajectorySettings settings, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(step);
        var rows = Denoising.ClassifierFreeGuidance.NeedsUnconditional(step.Guidance) ? 2 : 1;
        Interlocked.Add(ref _queuedRows, rows);
        try
        {
            var timing = await _batcher.StepAsync(step, cancellationToken).ConfigureAwait(false);
            // Batch ids only grow: record each pass once, from whichever of its items completes first.
            var last = Volatile.Read(ref _lastBatch);
            if (timing.BatchId > last && Interlocked.CompareExchange(ref _lastBatch, timing.BatchId, last) == last)
            {
                Compute.Record(timing.BatchRows, timing.Compute);
            }

            return new StepOutcome(timing, default);
        }
        finally
        {
            Interlocked.Add(ref _queuedRows, -rows);
        }
    }
}

/// <summary>
/// No backend can run a step right now: every worker hosting the model is out of rotation (or failed this search) and
/// local compute is off. Transient from the caller's side: a gRPC call gets UNAVAILABLE with this message.
/// </summary>
public sealed class NoBackendException(string message) : Exception(message);
