using SearchOrchestrator.Links;
using SearchOrchestrator.Scheduling;

namespace SearchOrchestrator.Workers;

/// <summary>
/// A place a node's steps run: this process's ONNX Runtime (<see cref="LocalBackend"/>), a remote worker
/// (<see cref="WorkerBackend"/>), or a stateless model server the pool holds (<see cref="IStatelessBackend"/>).
/// Placement compares backends by <see cref="PlacementPolicy.Estimate"/> from what they declare (their capabilities,
/// link and compute models), never by their type.
/// </summary>
public interface IStepBackend
{
    /// <summary><c>local</c>, or the worker's endpoint.</summary>
    string Name { get; }

    /// <summary>False while the backend is out of rotation.</summary>
    bool IsAvailable { get; }

    /// <summary>Rows queued or running now (counted by a <see cref="QueuedRowCount"/>).</summary>
    int QueuedRows { get; }

    /// <summary>The most rows one pass holds.</summary>
    int MaxBatchSize { get; }

    /// <summary>Measured forward-pass time by batch rows.</summary>
    ComputeCostModel Compute { get; }

    /// <summary>The link to the backend; null for this process.</summary>
    LinkCostModel? Link { get; }

    /// <summary>What one step moves over <see cref="Link"/>.</summary>
    StepTraffic StepTraffic { get; }

    /// <summary>The backend's resident-state operations when it keeps node states for this process; null when every step moves its tensors.</summary>
    IResidentStates? ResidentStates { get; }

    /// <summary>The message of the backend's latest failure, for errors that say why no backend was left; null before any.</summary>
    string? LastFailure { get; }

    /// <summary>Runs one step; the request's state and prediction buffers receive the result.</summary>
    Task<StepOutcome> StepAsync(StepRequest step, TrajectorySettings settings, CancellationToken cancellationToken = default);
}

/// <summary>What one step cost: the batch it joined and what it moved over a link.</summary>
public readonly record struct StepOutcome(BatchTiming Timing, Transfer Transfer)
{
    /// <summary>What a worker's own text encoder did for the call the step went in (counted with one of its steps only).</summary>
    public PromptEncoding Encoding { get; init; }
}

/// <summary>
/// What one node's step moves over a backend's link, in tensors the size of the node's state: per node for a backend
/// that runs the sampler (a worker: the state in, the new state and the x0-prediction back), per row for one that runs
/// only the network (a model server: each row in, its output back; a guided step has two rows).
/// </summary>
/// <param name="TensorsPerNode">State-sized tensors moved per node per step.</param>
/// <param name="TensorsPerRow">State-sized tensors moved per row per step.</param>
public readonly record struct StepTraffic(int TensorsPerNode, int TensorsPerRow)
{
    /// <summary>A backend that runs the sampler: the state in, the new state and the x0-prediction back.</summary>
    public static StepTraffic Sampler => new(3, 0);

    /// <summary>A backend that runs only the network: each row in, its output back.</summary>
    public static StepTraffic Network => new(0, 2);

    /// <summary>Bytes one row of a step moves, for states of <paramref name="stateBytes"/> and <paramref name="rowsPerNode"/> rows per node.</summary>
    public long BytesPerRow(long stateBytes, int rowsPerNode) => (TensorsPerNode * stateBytes / rowsPerNode) + (TensorsPerRow * stateBytes);
}

/// <summary>This process's ONNX Runtime session for one model, as a backend: its batcher plus measured pass times.</summary>
internal sealed class LocalBackend : IStepBackend
{
    private readonly DenoiserBatcher _batcher;
    private readonly int _maxBatchSize;
    private readonly QueuedRowCount _queued = new();
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
    public int QueuedRows => _queued.Rows;

    /// <inheritdoc />
    public int MaxBatchSize => _maxBatchSize;

    /// <inheritdoc />
    public ComputeCostModel Compute { get; } = new(TimeSpan.FromMilliseconds(1), TimeSpan.FromMilliseconds(1));

    /// <inheritdoc />
    public LinkCostModel? Link => null;

    /// <inheritdoc />
    public StepTraffic StepTraffic => default;

    /// <inheritdoc />
    public IResidentStates? ResidentStates => null;

    /// <inheritdoc />
    public string? LastFailure => null;

    /// <summary>The batcher steps run on.</summary>
    public DenoiserBatcher Batcher => _batcher;

    /// <inheritdoc />
    public async Task<StepOutcome> StepAsync(StepRequest step, TrajectorySettings settings, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(step);
        using var queued = _queued.Add(step.Rows);
        var timing = await _batcher.StepAsync(step, cancellationToken).ConfigureAwait(false);
        // Batch ids only grow: record each pass once, from whichever of its items completes first.
        var last = Volatile.Read(ref _lastBatch);
        if (timing.BatchId > last && Interlocked.CompareExchange(ref _lastBatch, timing.BatchId, last) == last)
        {
            Compute.Record(timing.BatchRows, timing.Compute);
        }

        return new StepOutcome(timing, default);
    }
}

/// <summary>
/// No backend can run a step right now: every worker hosting the model is out of rotation (or failed this search) and
/// local compute is off. Transient from the caller's side: a gRPC call gets UNAVAILABLE with this message.
/// </summary>
public sealed class NoBackendException(string message) : Exception(message);
