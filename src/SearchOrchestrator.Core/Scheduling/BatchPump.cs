using System.Threading.Channels;

namespace SearchOrchestrator.Scheduling;

/// <summary>One queued unit of work: its rows, its caller's cancellation, and the await to complete.</summary>
internal abstract class BatchWork
{
    private readonly TaskCompletionSource<BatchTiming> _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);

    protected BatchWork(int rows, CancellationToken cancellationToken)
    {
        Rows = rows;
        CancellationToken = cancellationToken;
    }

    public int Rows { get; }

    public CancellationToken CancellationToken { get; }

    public long EnqueuedAt { get; set; }

    /// <summary>Set by a batch that ran but could not produce this item's result; fails only this item.</summary>
    public Exception? Error { get; set; }

    public Task<BatchTiming> Completion => _completion.Task;

    public void Complete(BatchTiming timing) => _completion.TrySetResult(timing);

    public void Fail(Exception error) => _completion.TrySetException(error);

    public void Cancel() => _completion.TrySetCanceled(CancellationToken);
}

/// <summary>
/// One bounded queue and the pumps that drain it, as Orleans' per-target pumps do: wait for work, take
/// up to <see cref="BatchingOptions.MaxBatchSize"/> rows or whatever arrives within
/// <see cref="BatchingOptions.MaxQueueDelay"/>, run them as one batch, complete every await, repeat. Each *lane*
/// (one per instance of the model behind the queue, as Triton's instance groups run several executions of one model)
/// is a pump of its own; all of them take from the one queue, so a batch goes to whichever instance is free, and the
/// producers that could still add to a forming batch are shared among the idle lanes, so no instance idles while another
/// runs everything.
/// A full queue makes callers wait; nothing is dropped. Work whose caller cancelled is skipped, and a running pass
/// is terminated only when every item in it has been cancelled, so one search's cancellation never costs another.
/// The pump runs on a thread of its own: a forward pass blocks its thread for its whole length, and on a small
/// machine a pass holding a thread-pool thread starves the timers and callbacks (cancellation among them) that the
/// rest of the service needs.
/// A pass that runs *alone* (no other lane running one, every known producer in it: a lone search's step) is flagged
/// for its lane (<see cref="PassRunsAlone"/>), so the batcher can run it on a session with every core's thread.
/// </summary>
internal abstract class BatchPump<TWork> : IAsyncDisposable
    where TWork : BatchWork
{
    private readonly Channel<TWork> _queue;
    private readonly BatchingOptions _options;
    private readonly TimeProvider _time;
    private readonly CancellationTokenSource _stopping = new();
    private readonly Task[] _loops;
    // Items in batches being executed by some lane: they cannot join a batch that is forming.
    private int _runningItems;
    // Lanes executing a batch; the others (the forming one among them) are idle.
    private int _runningLanes;
    private readonly int _laneCount;
    // Per lane: whether its current pass runs alone; written by the lane while forming, read by its ExecuteAsync.
    private readonly bool[] _alone;
    // Held by the lane forming a batch; that lane alone reads the queue and the item carried over from the last batch.
    private readonly SemaphoreSlim _forming = new(1, 1);
    private TWork? _carried;
    // One id space for every pump in the process, so a search that joins batches on several backends counts each once.
    private static long s_batches;
    private int _disposed;
    private readonly KeyValuePair<string, object?> _tag;

    protected BatchPump(string name, BatchingOptions options, TimeProvider time, int lanes = 1)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(lanes, 1);
        _tag = new KeyValuePair<string, object?>("queue", name);
        var failures = options.Validate();
        if (failures.Count > 0)
        {
            throw new ArgumentException(string.Join(" ", failures), nameof(options));
        }

        _options = options;
        _time = time;
        _laneCount = lanes;
        _alone = new bool[lanes];
        _queue = Channel.CreateBounded<TWork>(new BoundedChannelOptions(options.QueueCapacity)
        {
            FullMode = BoundedChannelFullMode.Wait,
            SingleReader = lanes == 1,
        });
        _loops = [.. Enumerable.Range(0, lanes).Select(lane => Task.Factory.StartNew(() => Run(lane), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default))];
    }

    protected int MaxBatchSize => _options.MaxBatchSize;

    /// <summary>Queues <paramref name="work"/> (waiting while the queue is full) and awaits its batch.</summary>
    protected async Task<BatchTiming> SubmitAsync(TWork work)
    {
        if (work.Rows > _options.MaxBatchSize)
        {
            throw new ArgumentException($"One item needs {work.Rows} rows but a batch holds at most {_options.MaxBatchSize}.", nameof(work));
        }

        work.EnqueuedAt = _time.GetTimestamp();
        await _queue.Writer.WriteAsync(work, work.CancellationToken).ConfigureAwait(false);
        return await work.Completion.ConfigureAwait(false);
    }

    /// <summary>
    /// The most items that can arrive before this batch runs: when every producer known to be stepping (each has at most
    /// one item queued) is already in the batch, waiting longer only adds latency. Unknown (the default) means the
    /// full <see cref="BatchingOptions.MaxQueueDelay"/>.
    /// </summary>
    protected virtual int ExpectedItems => int.MaxValue;

    /// <summary>
    /// Whether the pass lane <paramref name="lane"/> is running runs alone (see <see cref="IsLonePass"/>); read it in
    /// <see cref="ExecuteAsync"/>.
    /// </summary>
    protected bool PassRunsAlone(int lane) => _alone[lane];

    /// <summary>
    /// The lone-pass rule: a pass runs alone when no other lane is running one and it holds every producer known to be
    /// stepping, so no other pass can start before it ends (each producer queues its next item only once this one
    /// completes). It may then use every core's thread without taking them from another pass; under load (several
    /// lanes busy, or producers left to join the next batch) each pass keeps its instance's share. With unknown
    /// producers (<see cref="ExpectedItems"/> at its default) a pass never runs alone.
    /// </summary>
    internal static bool IsLonePass(int expectedItems, int runningLanes, int batchItems) =>
        expectedItems != int.MaxValue && runningLanes == 0 && batchItems >= expectedItems;

    /// <summary>Runs one batch on lane <paramref name="lane"/>; fills each item's outputs. Throwing fails every item of the batch.</summary>
    protected abstract Task ExecuteAsync(IReadOnlyList<TWork> batch, int lane, CancellationToken passCancellation);

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return;
        }

        _queue.Writer.TryComplete();
        await _stopping.CancelAsync().ConfigureAwait(false);
        try
        {
            await Task.WhenAll(_loops).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }

        _carried?.Fail(new ObjectDisposedException(GetType().Name, "The batcher was shut down before this work ran."));
        while (_queue.Reader.TryRead(out var left))
        {
            left.Fail(new ObjectDisposedException(GetType().Name, "The batcher was shut down before this work ran."));
        }

        _stopping.Dispose();
        _forming.Dispose();
    }

    /// <summary>
    /// One lane's loop, on its dedicated thread: blocking waits are its whole job. Lanes take turns forming batches (one
    /// forms while the others run theirs); a batch waits for its lane's share of the producers (see
    /// <see cref="FairShare"/>), and its forward pass overlaps the other lanes' passes.
    /// </summary>
    private void Run(int lane)
    {
        var reader = _queue.Reader;
        var batch = new List<TWork>();
        while (true)
        {
            int rows;
            _forming.Wait(_stopping.Token);
            try
            {
                if (_carried is null && !Wait(reader, _stopping.Token))
                {
                    return;
                }

                rows = Form(reader, batch);
                if (batch.Count > 0)
                {
                    // Decided under the forming lock: no other lane can start a pass until it is released.
                    _alone[lane] = IsLonePass(ExpectedItems, Volatile.Read(ref _runningLanes), batch.Count);
                    // Counted as running before the next lane forms, so its share leaves these producers out. Counted
                    // only until the pass ends: once their awaits complete, the producers may queue again.
                    Interlocked.Add(ref _runningItems, batch.Count);
                    Interlocked.Increment(ref _runningLanes);
                }
            }
            finally
            {
                _forming.Release();
            }

            if (batch.Count > 0)
            {
                RunBatchAsync(batch, rows, lane).GetAwaiter().GetResult();
            }
        }
    }

    /// <summary>Takes up to a batch of work from the queue into <paramref name="batch"/> (the forming lane only); returns its rows.</summary>
    private int Form(ChannelReader<TWork> reader, List<TWork> batch)
    {
        batch.Clear();
        var rows = 0;
        var deadline = _time.GetTimestamp() + (long)(_options.MaxQueueDelay.TotalSeconds * _time.TimestampFrequency);
        while (true)
        {
            if (_carried is not null || reader.TryRead(out _carried))
            {
                if (_carried.CancellationToken.IsCancellationRequested)
                {
                    _carried.Cancel();
                }
                else if (rows + _carried.Rows > _options.MaxBatchSize || batch.Count >= FairShare())
                {
                    return rows; // keep it for the next batch (another lane's, if one is idle)
                }
                else
                {
                    batch.Add(_carried);
                    rows += _carried.Rows;
                }

                _carried = null;
                continue;
            }

            var remaining = deadline - _time.GetTimestamp();
            // Stop waiting once the batch is full, the delay is over, or it holds its share of the producers that could
            // still add to it (those whose items another lane is running cannot).
            if (batch.Count > 0 && (rows >= _options.MaxBatchSize || remaining <= 0 || batch.Count >= FairShare()))
            {
                return rows;
            }

            if (batch.Count == 0)
            {
                if (!Wait(reader, _stopping.Token))
                {
                    return rows;
                }

                continue;
            }

            // Wait for more work, but no longer than the queue delay that is left.
            using var wait = CancellationTokenSource.CreateLinkedTokenSource(_stopping.Token);
            wait.CancelAfter(TimeSpan.FromSeconds((double)remaining / _time.TimestampFrequency));
            try
            {
                if (!Wait(reader, wait.Token))
                {
                    return rows;
                }
            }
            catch (OperationCanceledException) when (!_stopping.IsCancellationRequested)
            {
                return rows;
            }
        }
    }

    /// <summary>
    /// How many items this batch waits for: every producer that could still add one, divided among the idle lanes.
    /// With one lane that is all of them; with two idle lanes and 32 stepping searches each lane takes 16, so both
    /// instances run a pass at once instead of one running a full batch while the other waits for the next.
    /// </summary>
    private int FairShare()
    {
        var expected = ExpectedItems;
        if (expected == int.MaxValue)
        {
            return int.MaxValue;
        }

        var open = Math.Max(1, expected - Volatile.Read(ref _runningItems));
        var idleLanes = Math.Max(1, _laneCount - Volatile.Read(ref _runningLanes));
        return (open + idleLanes - 1) / idleLanes;
    }

    private static bool Wait(ChannelReader<TWork> reader, CancellationToken cancellationToken) =>
        reader.WaitToReadAsync(cancellationToken).AsTask().GetAwaiter().GetResult();

    private async Task RunBatchAsync(List<TWork> batch, int rows, int lane)
    {
        var id = Interlocked.Increment(ref s_batches);
        var started = _time.GetTimestamp();
        using var pass = new PassCancellation(batch);
        try
        {
            try
            {
                await ExecuteAsync(batch, lane, pass.Token).ConfigureAwait(false);
            }
            finally
            {
                Interlocked.Decrement(ref _runningLanes);
                Interlocked.Add(ref _runningItems, -batch.Count);
            }
        }
        catch (OperationCanceledException) when (pass.Token.IsCancellationRequested)
        {
            batch.ForEach(w => w.Cancel());
            return;
        }
        catch (Exception ex)
        {
            batch.ForEach(w => w.Fail(ex));
            return;
        }

        var compute = _time.GetElapsedTime(started);
        Diagnostics.SearchMetrics.BatchRows.Record(rows, _tag);
        Diagnostics.SearchMetrics.BatchDuration.Record(compute.TotalSeconds, _tag);
        foreach (var work in batch)
        {
            Diagnostics.SearchMetrics.QueueDuration.Record(_time.GetElapsedTime(work.EnqueuedAt, started).TotalSeconds, _tag);
            if (work.Error is { } error)
            {
                work.Fail(error);
            }
            else
            {
                work.Complete(new BatchTiming(id, rows, _time.GetElapsedTime(work.EnqueuedAt, started), compute));
            }
        }
    }

    /// <summary>Cancelled when every item of the batch has been cancelled by its caller.</summary>
    private sealed class PassCancellation : IDisposable
    {
        private readonly CancellationTokenSource _source = new();
        private readonly List<CancellationTokenRegistration> _registrations = [];
        private int _live;

        public PassCancellation(List<TWork> batch)
        {
            _live = batch.Count;
            foreach (var work in batch)
            {
                _registrations.Add(work.CancellationToken.Register(OnItemCancelled));
            }
        }

        public CancellationToken Token => _source.Token;

        public void Dispose()
        {
            foreach (var registration in _registrations)
            {
                registration.Dispose();
            }

            _source.Dispose();
        }

        private void OnItemCancelled()
        {
            if (Interlocked.Decrement(ref _live) == 0)
            {
                _source.Cancel();
            }
        }
    }
}
