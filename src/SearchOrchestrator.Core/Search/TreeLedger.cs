using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using SearchOrchestrator.Links;
using SearchOrchestrator.Workers;

namespace SearchOrchestrator.Search;

/// <summary>
/// The books of one search: its budget (NFE reserved before any step runs, verifier calls, wall time), its cost account
/// (NFE where it is spent, replay and calibration NFE, each batch joined once, link traffic, queue and compute time) and
/// its tree events for streaming clients, in a bounded channel that counts what it drops. The tree and its executor
/// write here; nothing here knows where a node's state lives.
/// </summary>
internal sealed class TreeLedger
{
    /// <summary>Events kept for a client that reads slowly; past it the client loses detail, never memory.</summary>
    internal const int EventCapacity = 4096;

    // Distinct batches joined, by (backend, number): this process's batch numbers are unique here, a worker's on that
    // worker. Only the most recent are remembered: a batch's items complete together, so its later items are recorded
    // long before RecentBatches other batches have run, and the memory stays flat with steps.
    private const int RecentBatches = 64;
    private readonly HashSet<(string Backend, long Id)> _recentBatches = [];
    private readonly Queue<(string Backend, long Id)> _recentOrder = new();
    private readonly Dictionary<(string Link, string Stage), LinkUsage> _links = [];
    private readonly List<VerifierCost> _verifiers = [];
    private readonly List<LeftOutVerifier> _leftOut = [];
    private readonly SearchBudget _budget;
    private readonly TimeProvider _time;
    private readonly long _started;
    private readonly Channel<TreeEvent>? _events;
    private readonly object _gate = new();
    private int _batchesJoined;
    private int _eventsDropped;
    private long _batchRows;
    private long _nfe;
    private long _reservedNfe;
    private long _verifierCalls;
    private long _decoderCalls;
    private long _heldDecoderCalls;
    private long _encoderCalls;
    private long _encoderCacheHits;
    private long _calibrationNfe;
    private long _replayNfe;
    private long _previewNfe;
    private TimeSpan _queueTime;
    private TimeSpan _computeTime;

    public TreeLedger(SearchBudget budget, TimeProvider time, ILogger logger, bool recordEvents)
    {
        _budget = budget;
        _time = time;
        Logger = logger;
        _started = time.GetTimestamp();
        _events = recordEvents
            ? Channel.CreateBounded<TreeEvent>(new BoundedChannelOptions(EventCapacity) { FullMode = BoundedChannelFullMode.DropWrite, SingleReader = true }, _ => Interlocked.Increment(ref _eventsDropped))
            : null;
    }

    /// <summary>Where the search's executor and tree log.</summary>
    public ILogger Logger { get; }

    /// <summary>NFE spent so far.</summary>
    public long Nfe => Interlocked.Read(ref _nfe);

    /// <summary>NFE the budget still allows (long.MaxValue without a limit).</summary>
    public long NfeRemaining => _budget.MaxNfe is { } max ? Math.Max(0, max - Nfe - Interlocked.Read(ref _calibrationNfe)) : long.MaxValue;

    /// <summary>Verifier calls made so far.</summary>
    public long VerifierCalls => Interlocked.Read(ref _verifierCalls);

    /// <summary>True once any step or verification was refused by the budget.</summary>
    public bool BudgetLimited { get; private set; }

    /// <summary>Time since the search started.</summary>
    public TimeSpan Elapsed => _time.GetElapsedTime(_started);

    /// <summary>Reserves <paramref name="steps"/> NFE; reserved-but-not-yet-spent steps count against the budget too.</summary>
    public bool TryReserveNfe(long steps)
    {
        if (WallTimeExhausted())
        {
            return false;
        }

        if (_budget.MaxNfe is not { } max)
        {
            return true;
        }

        lock (_gate)
        {
            if (_reservedNfe + steps > max)
            {
                return false;
            }

            _reservedNfe += steps;
            return true;
        }
    }

    /// <summary>Decoder calls made so far.</summary>
    public long DecoderCalls => Interlocked.Read(ref _decoderCalls);

    /// <summary>Encoder calls made so far.</summary>
    public long EncoderCalls => Interlocked.Read(ref _encoderCalls);

    /// <summary>Holds <paramref name="calls"/> decoder calls back from the budget (the returned candidates' images), for <see cref="AddHeldDecoderCalls"/>.</summary>
    public void HoldDecoderCalls(long calls) => Interlocked.Exchange(ref _heldDecoderCalls, calls);

    /// <summary>
    /// Counts one call of each of <paramref name="verifiers"/> (one sample scored by each, in the total and in each
    /// verifier's own entry) and <paramref name="decoderCalls"/> decoder calls if the budget allows both; otherwise counts
    /// neither and says which limit refused (null when both fit).
    /// </summary>
    public string? TryReserveVerification(IReadOnlyList<string> verifiers, long decoderCalls)
    {
        lock (_gate)
        {
            if (WallTimeExhausted())
            {
                return "verify";
            }

            if (_budget.MaxDecoderCalls is { } maxDecoder && DecoderCalls + Interlocked.Read(ref _heldDecoderCalls) + decoderCalls > maxDecoder)
            {
                return "decode";
            }

            if (_budget.MaxVerifierCalls is { } max && VerifierCalls + verifiers.Count > max)
            {
                return "verify";
            }

            Interlocked.Add(ref _verifierCalls, verifiers.Count);
            Interlocked.Add(ref _decoderCalls, decoderCalls);
            foreach (var name in verifiers)
            {
                var i = VerifierIndex(name);
                _verifiers[i] = _verifiers[i] with { Calls = _verifiers[i].Calls + 1 };
            }

            return null;
        }
    }

    /// <summary>Counts decoder calls of the returned candidates, out of what <see cref="HoldDecoderCalls"/> held back.</summary>
    public void AddHeldDecoderCalls(long calls)
    {
        Interlocked.Add(ref _heldDecoderCalls, -calls);
        Interlocked.Add(ref _decoderCalls, calls);
    }

    /// <summary>Counts the prompts this search encoded and those it found in the shared cache.</summary>
    public void AddEncoding(long calls, long hits)
    {
        Interlocked.Add(ref _encoderCalls, calls);
        Interlocked.Add(ref _encoderCacheHits, hits);
    }

    /// <summary>Opens the cost entry of a verifier of the search (in the ensemble's order).</summary>
    public void AddVerifier(string name, string kind)
    {
        lock (_gate)
        {
            _verifiers.Add(new VerifierCost(name, kind, 0, 0, 0, TimeSpan.Zero));
        }
    }

    /// <summary>Counts what scoring this search's samples moved over <paramref name="verifier"/>'s link (its share of shared calls).</summary>
    public void RecordVerifierTransfer(string verifier, Transfer transfer)
    {
        if (transfer == default)
        {
            return;
        }

        lock (_gate)
        {
            var i = VerifierIndex(verifier);
            var cost = _verifiers[i];
            _verifiers[i] = cost with
            {
                BytesSent = cost.BytesSent + transfer.BytesSent,
                BytesReceived = cost.BytesReceived + transfer.BytesReceived,
                TransferTime = cost.TransferTime + transfer.Time,
            };
        }
    }

    /// <summary>Leaves <paramref name="verifier"/> out of the ensemble for the rest of the search; false when it already was.</summary>
    public bool LeaveOut(string verifier, string reason)
    {
        lock (_gate)
        {
            if (_leftOut.Any(l => l.Name == verifier))
            {
                return false;
            }

            _leftOut.Add(new LeftOutVerifier(verifier, reason));
        }

        TreeLog.VerifierLeftOut(Logger, verifier, reason);
        return true;
    }

    /// <summary>Whether <paramref name="verifier"/> was left out of this search's ensemble.</summary>
    public bool IsLeftOut(string verifier)
    {
        lock (_gate)
        {
            return _leftOut.Any(l => l.Name == verifier);
        }
    }

    /// <summary>The verifiers left out so far, in the order they failed.</summary>
    public IReadOnlyList<LeftOutVerifier> VerifiersLeftOut
    {
        get
        {
            lock (_gate)
            {
                return [.. _leftOut];
            }
        }
    }

    /// <summary>Marks the search budget-limited and says which limit refused <paramref name="nodes"/> nodes' work.</summary>
    public void Refuse(string work, int nodes)
    {
        BudgetLimited = true;
        var limit = WallTimeExhausted() ? "budget.max_wall_time" : work switch { "verify" => "budget.max_verifier_calls", "decode" => "budget.max_decoder_calls", _ => "budget.max_nfe" };
        TreeLog.WorkRefused(Logger, work, nodes, limit);
    }

    /// <summary>A calibration this search ran is part of its plan: it counts against the budget.</summary>
    public void AddCalibration(long nfe)
    {
        Interlocked.Add(ref _calibrationNfe, nfe);
        lock (_gate)
        {
            _reservedNfe += nfe;
        }
    }

    /// <summary>Counts NFE spent.</summary>
    public void AddNfe(long nfe) => Interlocked.Add(ref _nfe, nfe);

    /// <summary>Counts NFE spent on a preview: in the total and on its own.</summary>
    public void AddPreviewNfe(long nfe)
    {
        Interlocked.Add(ref _previewNfe, nfe);
        Interlocked.Add(ref _nfe, nfe);
    }

    /// <summary>NFE spent on previews so far.</summary>
    public long PreviewNfe => Interlocked.Read(ref _previewNfe);

    /// <summary>Counts one step of deterministic replay (outside the budget).</summary>
    public void AddReplayStep()
    {
        Interlocked.Increment(ref _replayNfe);
        Diagnostics.SearchMetrics.ReplayNfe.Add(1);
    }

    /// <summary>Counts time items of this search waited in a queue.</summary>
    public void AddQueueTime(TimeSpan queued)
    {
        lock (_gate)
        {
            _queueTime += queued;
        }
    }

    /// <summary>Counts one step: its wait, its batch (once per batch), and what it moved over <paramref name="backend"/>'s link.</summary>
    public void RecordStep(IStepBackend? backend, StepOutcome outcome)
    {
        var timing = outcome.Timing;
        lock (_gate)
        {
            _queueTime += timing.Queued;
            if (JoinBatch((string.Empty, timing.BatchId)))
            {
                _batchRows += timing.BatchRows;
                _computeTime += timing.Compute;
            }
        }

        if (backend is not null)
        {
            RecordTransfer(backend, outcome.Transfer);
        }
    }

    /// <summary>Counts a backend's passes for a resident advance: each of its batches once, as for this process's batches.</summary>
    public void RecordPasses(string backend, RemotePasses passes)
    {
        AddEncoding(passes.Encoding.Calls, passes.Encoding.Hits);
        lock (_gate)
        {
            _queueTime += passes.Queued;
            foreach (var pass in passes.Passes)
            {
                if (JoinBatch((backend, pass.BatchId)))
                {
                    _batchRows += pass.Rows;
                    _computeTime += pass.Compute;
                }
            }
        }
    }

    /// <summary>Counts what one call for <paramref name="stage"/> moved over <paramref name="backend"/>'s link (nothing for this process).</summary>
    public void RecordTransfer(IStepBackend backend, Transfer transfer, string stage = StageNames.Denoiser)
    {
        if (backend.Link is null)
        {
            return;
        }

        lock (_gate)
        {
            var usage = _links.TryGetValue((backend.Name, stage), out var u) ? u : new LinkUsage(backend.Name, 0, 0, TimeSpan.Zero, 0) { Stage = stage };
            _links[(backend.Name, stage)] = usage with
            {
                BytesSent = usage.BytesSent + transfer.BytesSent,
                BytesReceived = usage.BytesReceived + transfer.BytesReceived,
                TransferTime = usage.TransferTime + transfer.Time,
                Calls = usage.Calls + 1,
            };
        }
    }

    /// <summary>The cost account so far, with the tree's <paramref name="nfeIndependent"/>.</summary>
    public CostAccount Account(long nfeIndependent)
    {
        lock (_gate)
        {
            return new CostAccount
            {
                Nfe = Nfe,
                NfeIndependent = nfeIndependent + PreviewNfe,
                PreviewNfe = PreviewNfe,
                VerifierCalls = VerifierCalls,
                EncoderCalls = EncoderCalls,
                EncoderCacheHits = Interlocked.Read(ref _encoderCacheHits),
                DecoderCalls = DecoderCalls,
                CalibrationNfe = Interlocked.Read(ref _calibrationNfe),
                ReplayNfe = Interlocked.Read(ref _replayNfe),
                Links = [.. _links.Values.OrderBy(l => l.Link, StringComparer.Ordinal).ThenBy(l => l.Stage, StringComparer.Ordinal)],
                Verifiers = [.. _verifiers],
                Batches = _batchesJoined,
                MeanBatchSize = _batchesJoined == 0 ? 0 : (double)_batchRows / _batchesJoined,
                QueueTime = _queueTime,
                ComputeTime = _computeTime,
                WallTime = Elapsed,
            };
        }
    }

    /// <summary>Records an event for streaming clients (when the search keeps them); past the bound it is counted as dropped.</summary>
    public void Record(TreeEvent e) => _events?.Writer.TryWrite(e);

    /// <summary>Takes up to <paramref name="max"/> recorded events (oldest first), and the count dropped since the last call.</summary>
    public (IReadOnlyList<TreeEvent> Events, int Dropped) TakeEvents(int max)
    {
        if (_events is null)
        {
            return ([], 0);
        }

        var taken = new List<TreeEvent>();
        while (taken.Count < max && _events.Reader.TryRead(out var e))
        {
            taken.Add(e);
        }

        return (taken, Interlocked.Exchange(ref _eventsDropped, 0));
    }

    /// <summary>Whether this search joins the batch for the first time; call under <see cref="_gate"/>.</summary>
    private bool JoinBatch((string Backend, long Id) batch)
    {
        if (!_recentBatches.Add(batch))
        {
            return false;
        }

        _batchesJoined++;
        _recentOrder.Enqueue(batch);
        if (_recentOrder.Count > RecentBatches)
        {
            _recentBatches.Remove(_recentOrder.Dequeue());
        }

        return true;
    }

    /// <summary>The entry of <paramref name="verifier"/>; call under <see cref="_gate"/>.</summary>
    private int VerifierIndex(string verifier)
    {
        var i = _verifiers.FindIndex(v => v.Name == verifier);
        return i >= 0 ? i : throw new InvalidOperationException($"Verifier '{verifier}' is not one of this search's.");
    }

    private bool WallTimeExhausted() => _budget.MaxWallTime is { } wall && Elapsed >= wall;
}

/// <summary>What the search tree and its executors log.</summary>
internal static partial class TreeLog
{
    [LoggerMessage(EventId = 5101, Level = LogLevel.Information, Message = "Search budget refused {Work} for {Nodes} node(s): {Limit} is reached")]
    public static partial void WorkRefused(ILogger logger, string work, int nodes, string limit);

    [LoggerMessage(EventId = 5102, Level = LogLevel.Warning, Message = "Backend {Backend} failed while {Operation}; its work runs elsewhere and what it held is recomputed by replay. {Reason}")]
    public static partial void BackendFailed(ILogger logger, string backend, string operation, string reason);

    [LoggerMessage(EventId = 5103, Level = LogLevel.Information, Message = "Recomputed node {Node} ({Path}) at step {Step} by deterministic replay: {Nfe} NFE outside the budget")]
    public static partial void Replayed(ILogger logger, int node, string path, int step, int nfe);

    [LoggerMessage(EventId = 5105, Level = LogLevel.Warning, Message = "Verifier {Verifier} is left out of this search's ensemble (the request allows it): {Reason}")]
    public static partial void VerifierLeftOut(ILogger logger, string verifier, string reason);

    [LoggerMessage(EventId = 5104, Level = LogLevel.Warning, Message = "Releasing {Count} resident node(s) on {Backend} failed; the backend expires them when this session is idle")]
    public static partial void ReleaseFailed(ILogger logger, Exception error, string backend, int count);
}
