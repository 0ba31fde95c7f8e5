using SearchOrchestrator.Processes;
using SearchOrchestrator.Randomness;
using SearchOrchestrator.Scheduling;
using SearchOrchestrator.Tensors;
using SearchOrchestrator.Verifiers;
using SearchOrchestrator.Workers;

namespace SearchOrchestrator.Search;

/// <summary>
/// The tree of trajectories of one search, and the only way strategies touch the denoiser and the verifiers:
/// <see cref="CreateRoot()"/>, <see cref="AdvanceAsync(IReadOnlyList{Node}, int, CancellationToken)"/>,
/// <see cref="Fork"/>, <see cref="Renoise"/>, <see cref="VerifyAsync"/> and <see cref="Prune"/>. Strategies write plain
/// async code against it; the batchers underneath turn the awaits of every search into few large batches.
/// It counts NFE where it is spent and enforces the budget.
/// </summary>
public sealed class TrajectoryTree
{
    private readonly List<Node> _nodes = [];
    private readonly List<Node> _roots = [];
    private readonly DenoiserBatcher _denoiser;
    private readonly IReadOnlyList<VerifierBatcher> _verifiers;
    private readonly VerifierEnsemble _ensemble;
    private readonly StepSchedule _schedule;
    private readonly ISampler _sampler;
    private readonly SearchBudget _budget;
    private readonly TimeProvider _time;
    private readonly long _started;
    private readonly RngKey _seedKey;
    private readonly Func<CancellationToken, Task<(ForkCalibrationResult Result, bool Ran)>>? _calibrate;
    private readonly Queue<TreeEvent>? _events;
    private readonly object _gate = new();
    // Distinct batches joined, remembered only for the most recent ones: a batch's items complete together, so its
    // later items are recorded long before RecentBatches other batches have run, and the memory stays flat with steps.
    private const int RecentBatches = 64;
    private readonly HashSet<long> _recentBatches = [];
    private readonly Queue<long> _recentOrder = new();
    private int _batchesJoined;
    private readonly TreePlacement? _placement;
    private readonly TrajectorySettings _trajectory;
    private readonly Dictionary<string, LinkUsage> _links = new(StringComparer.Ordinal);
    private long _replayNfe;
    private int _eventsDropped;
    private long _calibrationNfe;
    private long _batchRows;
    private long _nfe;
    private long _reservedNfe;
    private long _verifierCalls;
    private TimeSpan _queueTime;
    private TimeSpan _computeTime;

    internal TrajectoryTree(TreeSettings settings)
    {
        _denoiser = settings.Denoiser;
        _verifiers = settings.Verifiers;
        _ensemble = settings.Ensemble;
        _schedule = settings.Schedule;
        _sampler = settings.Sampler;
        _budget = settings.Budget;
        _time = settings.Time;
        _seedKey = RngKey.ForSeed(settings.Seed);
        Condition = settings.Condition;
        ConditionId = settings.ConditionId;
        Guidance = settings.Guidance;
        Seed = settings.Seed;
        ForkRenoiseSteps = settings.ForkRenoiseSteps;
        _calibrate = settings.CalibrateForkStep;
        _events = settings.RecordEvents ? new Queue<TreeEvent>() : null;
        _placement = settings.Placement;
        _trajectory = new TrajectorySettings(_denoiser.Denoiser.Description.Name, _schedule.Count, _sampler.Settings, settings.Prompt, Guidance, ConditionId);
        _started = _time.GetTimestamp();
    }

    /// <summary>N, the number of sampling steps.</summary>
    public int Steps => _schedule.Count;

    /// <summary>The condition label every node is generated for.</summary>
    public string Condition { get; }

    /// <summary>The request seed; node keys derive from it.</summary>
    public ulong Seed { get; }

    /// <summary>The shape of one sample.</summary>
    public SampleShape SampleShape => _denoiser.Denoiser.Description.SampleShape;

    /// <summary>True when a step draws fresh randomness (η &gt; 0, or sampled tokens), so siblings diverge on their own.</summary>
    public bool IsStochastic => _sampler.IsStochastic;

    /// <summary>How many steps a fork under a deterministic sampler renoises its children back, so they differ.</summary>
    public int ForkRenoiseSteps { get; }

    /// <summary>Verifier names in this search's ensemble (empty when it has none).</summary>
    public IReadOnlyList<string> Verifiers => _ensemble.Verifiers;

    /// <summary>Every node, in creation order.</summary>
    public IReadOnlyList<Node> Nodes => _nodes;

    /// <summary>The roots, in creation order.</summary>
    public IReadOnlyList<Node> Roots => _roots;

    /// <summary>NFE spent so far.</summary>
    public long Nfe => Interlocked.Read(ref _nfe);

    /// <summary>NFE the budget still allows (long.MaxValue without a limit).</summary>
    public long NfeRemaining => _budget.MaxNfe is { } max ? Math.Max(0, max - Nfe - Interlocked.Read(ref _calibrationNfe)) : long.MaxValue;

    /// <summary>Verifier calls made so far.</summary>
    public long VerifierCalls => Interlocked.Read(ref _verifierCalls);

    /// <summary>True once any step or verification was refused by the budget.</summary>
    public bool BudgetLimited { get; private set; }

    internal long ConditionId { get; }

    internal double Guidance { get; }

    /// <summary>A new root: pure noise at step 0, keyed by (seed, root index).</summary>
    public Node CreateRoot()
    {
        lock (_gate)
        {
            var (key, index, state) = NextRoot();
            return AddRoot(key, index, state, isKeyPrior: true);
        }
    }

    /// <summary>
    /// A new root whose noise is a neighbour of root <paramref name="pivot"/>'s starting noise: λ·x_pivot + √(1 − λ²)·z,
    /// still a standard normal draw, at similarity λ = <paramref name="similarity"/> (zero-order search, Ma et al., 2025).
    /// </summary>
    public Node CreateRoot(Node pivot, double similarity)
    {
        ArgumentNullException.ThrowIfNull(pivot);
        RequireLive(pivot);
        if (pivot.Parent is not null)
        {
            throw new InvalidOperationException($"Neighbours are drawn around a root's starting noise; {pivot} is not a root.");
        }

        if (!(similarity >= 0 && similarity <= 1))
        {
            throw new ArgumentOutOfRangeException(nameof(similarity), similarity, "Similarity must lie in [0, 1].");
        }

        lock (_gate)
        {
            var (key, index, state) = NextRoot();
            _sampler.Neighbour(pivot.Prior ?? NodeStates.Prior(_sampler, pivot.Key, state.Length), similarity, state);
            return AddRoot(key, index, state, isKeyPrior: false);
        }
    }

    /// <summary>
    /// fork(node, k): k children that start from the node's state and differ only in the noise they draw after it.
    /// Under a deterministic sampler (η = 0) the children are renoised back <see cref="ForkRenoiseSteps"/> steps
    /// (a root's children draw fresh prior noise) so they never duplicate each other. A deterministic sampler whose roots
    /// all start alike (greedy masked decoding) cannot make a root's children differ and refuses with <see cref="InvalidRequestException"/>.
    /// </summary>
    public IReadOnlyList<Node> Fork(Node node, int k)
    {
        ArgumentNullException.ThrowIfNull(node);
        ArgumentOutOfRangeException.ThrowIfLessThan(k, 1);
        RequireLive(node);
        var children = new Node[k];
        lock (_gate)
        {
            var resident = node.IsLocal ? null : node.Residence;
            var specs = new List<ResidentChild>(k);
            for (var j = 0; j < k; j++)
            {
                var key = node.Key.Child(node.Children.Count);
                var (origin, step) = IsStochastic ? (NodeOrigin.Copy, node.StepIndex)
                    : node.StepIndex == 0 ? (NodeOrigin.Prior, 0)
                    : (NodeOrigin.ForkRenoise, Math.Max(0, node.StepIndex - ForkRenoiseSteps));
                if (origin == NodeOrigin.Prior)
                {
                    RequireDistinctRoots("fork a root");
                }

                if (resident is not null)
                {
                    // The parent lives on a worker: its children are made there too, and nothing moves.
                    var handle = _placement!.Pool.NextHandle();
                    specs.Add(new ResidentChild(handle, key, origin switch { NodeOrigin.Copy => ChildStart.Copy, NodeOrigin.Prior => ChildStart.Prior, _ => ChildStart.ForkRenoise }, step));
                    children[j] = Add(node, key, origin, step, null, node.HasPrediction);
                    children[j].Residence = new Residence(resident.Worker, handle);
                    continue;
                }

                var state = origin switch
                {
                    NodeOrigin.Copy => (float[])node.MutableState.Clone(),
                    NodeOrigin.Prior => NodeStates.Prior(_sampler, key, node.MutableState.Length),
                    _ => NodeStates.Renoise(_sampler, node.MutableState, _schedule, node.StepIndex, step, key, forFork: true),
                };
                children[j] = Add(node, key, origin, step, state, (float[]?)node.PredictionOrNull?.Clone());
            }

            if (resident is not null)
            {
                var ready = RemoteForkAsync(node.RemoteReady, resident, specs);
                node.RemoteReady = ready;
                foreach (var child in children)
                {
                    child.RemoteReady = ready;
                }
            }
        }

        foreach (var child in children)
        {
            Record(new TreeEvent(TreeEventKind.Forked, child.Id, child.Path, child.StepIndex, node.Id));
        }

        return children;
    }

    /// <summary>
    /// renoise(node, j): a child at the earlier, noisier step j drawn from the forward kernel q(x_j | x_i) with the
    /// child's own noise: the backtracking of DFS and of search over paths. It costs no NFE; advancing it again does.
    /// </summary>
    public Node Renoise(Node node, int toStep)
    {
        ArgumentNullException.ThrowIfNull(node);
        RequireLive(node);
        if (toStep < 0 || toStep >= node.StepIndex)
        {
            throw new ArgumentOutOfRangeException(nameof(toStep), toStep, $"renoise goes back to an earlier step than {node.StepIndex}.");
        }

        Node child;
        lock (_gate)
        {
            var key = node.Key.Child(node.Children.Count);
            if (!node.IsLocal && node.Residence is { } resident)
            {
                var handle = _placement!.Pool.NextHandle();
                child = Add(node, key, NodeOrigin.Renoise, toStep, null, node.HasPrediction);
                child.Residence = new Residence(resident.Worker, handle);
                var ready = RemoteForkAsync(node.RemoteReady, resident, [new ResidentChild(handle, key, ChildStart.Renoise, toStep)]);
                node.RemoteReady = ready;
                child.RemoteReady = ready;
            }
            else
            {
                child = Add(node, key, NodeOrigin.Renoise, toStep, NodeStates.Renoise(_sampler, node.MutableState, _schedule, node.StepIndex, toStep, key, forFork: false), (float[]?)node.PredictionOrNull?.Clone());
            }
        }

        Record(new TreeEvent(TreeEventKind.Renoised, child.Id, child.Path, toStep, node.Id));
        return child;
    }

    /// <summary>Advances one node to <paramref name="toStep"/>.</summary>
    public Task AdvanceAsync(Node node, int toStep, CancellationToken cancellationToken = default) => AdvanceAsync([node], toStep, cancellationToken);

    /// <summary>
    /// Advances every node to <paramref name="toStep"/>, their steps batched with each other and with every other
    /// search. The budget is reserved per node, in list order, before anything runs: a node the budget cannot carry
    /// all the way does not move, and the search is marked budget-limited.
    /// </summary>
    public async Task AdvanceAsync(IReadOnlyList<Node> nodes, int toStep, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(nodes);
        if (toStep < 0 || toStep > Steps)
        {
            throw new ArgumentOutOfRangeException(nameof(toStep), toStep, $"Steps run from 0 to {Steps}.");
        }

        var accepted = new List<Node>(nodes.Count);
        foreach (var node in nodes)
        {
            RequireLive(node);
            var steps = toStep - node.StepIndex;
            if (steps <= 0)
            {
                continue;
            }

            if (!TryReserveNfe(steps))
            {
                BudgetLimited = true;
                Record(new TreeEvent(TreeEventKind.BudgetLimited, -1, string.Empty, node.StepIndex));
                continue;
            }

            accepted.Add(node);
        }

        if (_placement is null)
        {
            await AdvanceSteppedAsync(accepted, toStep, null, [], cancellationToken).ConfigureAwait(false);
        }
        else
        {
            await AdvancePlacedAsync(accepted, toStep, [], cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Scores the nodes' x0-predictions with every verifier of the search and combines them by its ensemble rule into
    /// <see cref="Node.Score"/>. Nodes the verifier-call budget cannot cover are left unscored (and the search is
    /// marked budget-limited). Returns the nodes that were scored.
    /// </summary>
    public async Task<IReadOnlyList<Node>> VerifyAsync(IReadOnlyList<Node> nodes, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(nodes);
        if (_verifiers.Count == 0)
        {
            throw new InvalidOperationException("This search has no verifiers to score with.");
        }

        var scored = new List<Node>(nodes.Count);
        foreach (var node in nodes)
        {
            RequireLive(node);
            if (!node.HasPrediction)
            {
                throw new InvalidOperationException($"{node} has no x0-prediction yet; advance it at least one step before verifying.");
            }

            if (!TryReserveVerifierCalls(_verifiers.Count))
            {
                BudgetLimited = true;
                break;
            }

            scored.Add(node);
        }

        if (scored.Count == 0)
        {
            return scored;
        }

        var scores = new float[_verifiers.Count][];
        await Task.WhenAll(_verifiers.Select(async (verifier, v) =>
        {
            scores[v] = new float[scored.Count];
            var here = await ScoreRemotelyAsync(_ensemble.Verifiers[v], scored, scores[v], cancellationToken).ConfigureAwait(false);
            await MaterializeAsync([.. here.Select(i => scored[i])], cancellationToken).ConfigureAwait(false);
            var results = await Task.WhenAll(here.Select(i => verifier.ScoreAsync(SampleShape, scored[i].Prediction!.Value[..SampleShape.ElementCount].ToArray(), Condition, cancellationToken))).ConfigureAwait(false);
            for (var j = 0; j < here.Count; j++)
            {
                scores[v][here[j]] = results[j].Score;
                lock (_gate)
                {
                    _queueTime += results[j].Timing.Queued;
                }
            }
        })).ConfigureAwait(false);

        var combined = _ensemble.Combine(scores);
        for (var i = 0; i < scored.Count; i++)
        {
            for (var v = 0; v < _verifiers.Count; v++)
            {
                scored[i].SetScore(_ensemble.Verifiers[v], scores[v][i]);
            }

            scored[i].Score = combined[i];
            scored[i].ScoredAtStep = scored[i].StepIndex;
            Record(new TreeEvent(TreeEventKind.Verified, scored[i].Id, scored[i].Path, scored[i].StepIndex, Score: combined[i]));
        }

        return scored;
    }

    /// <summary>
    /// The latest step at which siblings of this model and condition still differ in verifier score
    /// (<c>fork_at: auto</c>), from the engine's cached calibration. The calibration's NFE, when this call ran it, is
    /// reported separately from the search's own and counts against the budget.
    /// </summary>
    public async Task<int> CalibratedForkStepAsync(CancellationToken cancellationToken = default)
    {
        var calibrate = _calibrate ?? throw new InvalidOperationException("This tree has no fork calibration.");
        var (result, ran) = await calibrate(cancellationToken).ConfigureAwait(false);
        if (ran)
        {
            // The calibration this search ran is part of its plan: it counts against the budget.
            Interlocked.Add(ref _calibrationNfe, result.Nfe);
            lock (_gate)
            {
                _reservedNfe += result.Nfe;
            }
        }

        return result.ForkStep;
    }

    /// <summary>prune(node): drops the node and its subtree, releasing their tensors at once. Their NFE stays counted.</summary>
    public void Prune(Node node)
    {
        ArgumentNullException.ThrowIfNull(node);
        Record(new TreeEvent(TreeEventKind.Pruned, node.Id, node.Path, node.StepIndex));
        var stack = new Stack<Node>([node]);
        while (stack.TryPop(out var current))
        {
            ReleaseRemote(current);
            current.Release();
            foreach (var child in current.Children)
            {
                stack.Push(child);
            }
        }
    }

    /// <summary>The cost account so far.</summary>
    public CostAccount Account()
    {
        lock (_gate)
        {
            return new CostAccount
            {
                Nfe = Nfe,
                NfeIndependent = _nodes.Where(n => n.EndsATrajectory).Sum(n => n.PathNfe),
                VerifierCalls = VerifierCalls,
                CalibrationNfe = Interlocked.Read(ref _calibrationNfe),
                ReplayNfe = Interlocked.Read(ref _replayNfe),
                Links = [.. _links.Values.OrderBy(l => l.Link, StringComparer.Ordinal)],
                Batches = _batchesJoined,
                MeanBatchSize = _batchesJoined == 0 ? 0 : (double)_batchRows / _batchesJoined,
                QueueTime = _queueTime,
                ComputeTime = _computeTime,
                WallTime = _time.GetElapsedTime(_started),
            };
        }
    }

    /// <summary>Takes the recorded events (oldest first), up to <paramref name="max"/>; what is left over counts as dropped.</summary>
    internal (IReadOnlyList<TreeEvent> Events, int Dropped) TakeEvents(int max)
    {
        lock (_gate)
        {
            if (_events is null)
            {
                return ([], 0);
            }

            var taken = new List<TreeEvent>(Math.Min(max, _events.Count));
            while (taken.Count < max && _events.TryDequeue(out var e))
            {
                taken.Add(e);
            }

            var dropped = _eventsDropped + _events.Count;
            _events.Clear();
            _eventsDropped = 0;
            return (taken, dropped);
        }
    }

    private void Record(TreeEvent e)
    {
        if (_events is null)
        {
            return;
        }

        lock (_gate)
        {
            // Bounded: a client that reads slowly loses detail, never memory.
            if (_events.Count >= 4096)
            {
                _eventsDropped++;
                return;
            }

            _events.Enqueue(e);
        }
    }

    /// <summary>A snapshot for progress reports.</summary>
    public SearchProgress Progress()
    {
        lock (_gate)
        {
            var best = _nodes.Where(n => n.Score is not null).Select(n => n.Score!.Value).DefaultIfEmpty(double.NaN).Max();
            return new SearchProgress(Nfe, VerifierCalls, _nodes.Count, _nodes.Count == 0 ? 0 : _nodes.Max(n => n.StepIndex), double.IsNaN(best) ? null : best, _time.GetElapsedTime(_started));
        }
    }

    /// <summary>Releases every node's tensors (the search is over).</summary>
    internal void ReleaseAll()
    {
        lock (_gate)
        {
            foreach (var group in _nodes.Where(n => n.Residence is not null).GroupBy(n => n.Residence!.Worker))
            {
                var handles = group.Select(n => n.Residence!.Handle).ToList();
                var ready = Task.WhenAll(group.Select(n => n.RemoteReady));
                _ = ReleaseAfterAsync(ready, group.Key, handles);
            }

            foreach (var node in _nodes)
            {
                node.Residence = null;
                node.Release();
            }
        }
    }

    /// <summary>
    /// Brings the current state (and x0-prediction) of every node resident on a worker to this process: fetched from
    /// the worker, or, when the worker is gone, recomputed from the nearest ancestor held here by deterministic replay.
    /// </summary>
    public async Task MaterializeAsync(IReadOnlyList<Node> nodes, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(nodes);
        var stale = nodes.Where(n => !n.IsPruned && !n.IsLocal).Distinct().ToList();
        foreach (var group in stale.GroupBy(n => n.Residence?.Worker))
        {
            var list = group.ToList();
            HashSet<IStepBackend> exclude = [];
            if (group.Key is { } worker)
            {
                exclude.Add(worker);
                try
                {
                    await Task.WhenAll(list.Select(n => n.RemoteReady)).ConfigureAwait(false);
                    var (fetched, transfer) = await worker.FetchAsync([.. list.Select(n => n.Residence!.Handle)], cancellationToken).ConfigureAwait(false);
                    RecordTransfer(worker, transfer);
                    for (var i = 0; i < list.Count; i++)
                    {
                        var got = fetched[i];
                        var elements = _denoiser.Denoiser.Description.StateElements;
                        if (got.StepIndex != list[i].StepIndex || got.State?.Length != elements || (got.Prediction is { Length: > 0 } p && p.Length != elements))
                        {
                            throw new WorkerDataException(worker.Name, $"node {got.Handle} came back at step {got.StepIndex} with {got.State?.Length ?? 0} values; expected step {list[i].StepIndex} and {elements}.");
                        }

                        list[i].SetLocal(got.State, got.Prediction is { Length: > 0 } prediction ? prediction : null);
                    }

                    continue;
                }
                catch (Exception ex) when (IsWorkerFault(ex, cancellationToken))
                {
                    // Recomputed below.
                }
            }

            foreach (var node in list.Where(n => !n.IsLocal))
            {
                await RecoverAsync(node, exclude, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>
    /// Verification runs where its inputs are: nodes resident on a worker that hosts <paramref name="verifier"/> are
    /// scored there by handle (nothing but scores moves). Returns the indices left to score here (after fetching).
    /// </summary>
    private async Task<List<int>> ScoreRemotelyAsync(string verifier, List<Node> nodes, float[] scores, CancellationToken cancellationToken)
    {
        var here = new List<int>();
        var remote = new Dictionary<WorkerBackend, List<int>>();
        for (var i = 0; i < nodes.Count; i++)
        {
            if (!nodes[i].IsLocal && nodes[i].Residence is { } r && r.Worker.IsAvailable && r.Worker.Hosts(verifier))
            {
                (remote.TryGetValue(r.Worker, out var list) ? list : remote[r.Worker] = []).Add(i);
            }
            else
            {
                here.Add(i);
            }
        }

        foreach (var (worker, indices) in remote)
        {
            try
            {
                await Task.WhenAll(indices.Select(i => nodes[i].RemoteReady)).ConfigureAwait(false);
                var (remoteScores, transfer) = await worker.VerifyResidentAsync(verifier, Condition, [.. indices.Select(i => nodes[i].Residence!.Handle)], cancellationToken).ConfigureAwait(false);
                RecordTransfer(worker, transfer);
                for (var j = 0; j < indices.Count; j++)
                {
                    scores[indices[j]] = remoteScores[j];
                }
            }
            catch (Exception ex) when (IsWorkerFault(ex, cancellationToken))
            {
                here.AddRange(indices); // fetched or recomputed, then scored here
            }
        }

        return here;
    }

    private static bool IsWorkerFault(Exception ex, CancellationToken cancellationToken) =>
        !cancellationToken.IsCancellationRequested && ex is WorkerUnavailableException or WorkerDataException;

    /// <summary>
    /// Advances placed nodes: nodes resident on a worker in rotation stay there (children stay where their parent's
    /// state lives); the others go, together, to the backend where the group finishes soonest once moving it is counted.
    /// </summary>
    private async Task AdvancePlacedAsync(List<Node> nodes, int toStep, HashSet<IStepBackend> exclude, CancellationToken cancellationToken)
    {
        if (nodes.Count == 0)
        {
            return;
        }

        var placement = _placement!;
        var tasks = new List<Task>();
        var rest = new List<Node>();
        foreach (var group in nodes.GroupBy(n => n.IsLocal ? null : n.Residence?.Worker))
        {
            // Resident nodes stay where their state lives unless moving them (a fetch over that worker's link) and
            // running elsewhere finishes sooner.
            if (group.Key is { } worker && worker.IsAvailable && !exclude.Contains(worker)
                && placement.Stays([.. group], worker, toStep, _denoiser.Denoiser.Description.StateElements, exclude))
            {
                tasks.Add(AdvanceResidentAsync(worker, [.. group], toStep, exclude, cancellationToken));
            }
            else
            {
                rest.AddRange(group);
            }
        }

        if (rest.Count > 0)
        {
            // Nodes leaving a worker that is still up are fetched from it (recomputed only if it is gone).
            await MaterializeAsync([.. rest.Where(n => !n.IsLocal && n.Residence?.Worker.IsAvailable == true)], cancellationToken).ConfigureAwait(false);
            var backend = placement.Choose(rest, toStep, _denoiser.Denoiser.Description.StateElements, exclude);
            if (backend is WorkerBackend worker && placement.Resident)
            {
                tasks.Add(AdvanceResidentAsync(worker, rest, toStep, exclude, cancellationToken));
            }
            else
            {
                tasks.Add(AdvanceSteppedAsync(rest, toStep, backend, exclude, cancellationToken));
            }
        }

        await Task.WhenAll(tasks).ConfigureAwait(false);
    }

    /// <summary>
    /// Advances nodes on a worker that keeps them resident: puts the ones it does not hold yet (a root's prior is drawn
    /// there from its key), then one Advance call ships only their handles. If the worker fails, each node is recovered
    /// (from the copy put moments ago, or by replay) and advanced elsewhere.
    /// </summary>
    private async Task AdvanceResidentAsync(WorkerBackend worker, List<Node> nodes, int toStep, HashSet<IStepBackend> exclude, CancellationToken cancellationToken)
    {
        try
        {
            await Task.WhenAll(nodes.Select(n => n.RemoteReady)).ConfigureAwait(false);
            var toPut = nodes.Where(n => n.Residence?.Worker != worker).ToList();
            if (toPut.Count > 0)
            {
                foreach (var node in toPut.Where(n => !n.IsLocal))
                {
                    await RecoverAsync(node, [.. exclude, worker], cancellationToken).ConfigureAwait(false);
                }

                var handles = toPut.Select(_ => _placement!.Pool.NextHandle()).ToList();
                var states = toPut.Select((n, i) => n.IsKeyPrior && n.StepIndex == 0
                    ? new ResidentState(handles[i], n.Key, 0, null, null, FromPrior: true)
                    : new ResidentState(handles[i], n.Key, n.StepIndex, n.MutableState, n.PredictionOrNull)).ToList();
                RecordTransfer(worker, await worker.PutAsync(_trajectory, states, cancellationToken).ConfigureAwait(false));
                for (var i = 0; i < toPut.Count; i++)
                {
                    ReleaseRemote(toPut[i]);
                    toPut[i].Residence = new Residence(worker, handles[i]);
                }
            }

            var steps = toStep - nodes.Min(n => n.StepIndex);
            var rows = nodes.Count * (Denoising.ClassifierFreeGuidance.NeedsUnconditional(Guidance) ? 2 : 1);
            var transfer = await worker.AdvanceAsync([.. nodes.Select(n => n.Residence!.Handle)], toStep, steps, rows, cancellationToken).ConfigureAwait(false);
            RecordTransfer(worker, transfer);
            foreach (var node in nodes)
            {
                var advanced = toStep - node.StepIndex;
                node.MarkAdvancingRemotely();
                node.StepIndex = toStep;
                node.PathNfe += advanced;
                node.HasPrediction |= advanced > 0;
                Interlocked.Add(ref _nfe, advanced);
                Record(new TreeEvent(TreeEventKind.Advanced, node.Id, node.Path, node.StepIndex));
            }
        }
        catch (Exception ex) when (IsWorkerFault(ex, cancellationToken))
        {
            HashSet<IStepBackend> next = [.. exclude, worker];
            foreach (var node in nodes)
            {
                if (node.Residence?.Worker == worker)
                {
                    ReleaseRemote(node);
                }

                if (!node.IsLocal)
                {
                    await RecoverAsync(node, next, cancellationToken).ConfigureAwait(false);
                }
            }

            await AdvancePlacedAsync(nodes, toStep, next, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Advances one node step by step on <paramref name="backend"/> (null: this process's batcher), moving its state each step.</summary>
    /// <summary>
    /// Advances nodes step by step on <paramref name="backend"/>, one loop each. On this process's batcher every loop
    /// is registered as a producer before any starts, so a forming batch runs as soon as all their steps are in it
    /// (and never before: a loop registered late would split the group's first batch).
    /// </summary>
    private Task AdvanceSteppedAsync(IReadOnlyList<Node> nodes, int toStep, IStepBackend? backend, HashSet<IStepBackend> exclude, CancellationToken cancellationToken)
    {
        var producers = nodes.Select(_ => backend is null or LocalBackend ? _denoiser.Producer() : null).ToList();
        return Task.WhenAll(nodes.Select((n, i) => AdvanceSteppedAsync(n, toStep, backend, exclude, producers[i], cancellationToken)));
    }

    private async Task AdvanceSteppedAsync(Node node, int toStep, IStepBackend? backend, HashSet<IStepBackend> exclude, IDisposable? producer, CancellationToken cancellationToken)
    {
        using var registration = producer;
        if (!node.IsLocal)
        {
            await RecoverAsync(node, exclude, cancellationToken).ConfigureAwait(false);
        }
        else
        {
            ReleaseRemote(node); // the copy here is current; a worker's copy would go stale
        }

        while (node.StepIndex < toStep)
        {
            var i = node.StepIndex;
            var request = NodeStates.Step(_schedule, _sampler, ConditionId, Guidance, node.Key, i, node.MutableState, node.PredictionBuffer);
            StepOutcome outcome;
            if (backend is null)
            {
                outcome = new StepOutcome(await _denoiser.StepAsync(request, cancellationToken).ConfigureAwait(false), default);
            }
            else
            {
                try
                {
                    outcome = await backend.StepAsync(request, _trajectory, cancellationToken).ConfigureAwait(false);
                }
                catch (Exception ex) when (IsWorkerFault(ex, cancellationToken))
                {
                    // The state is untouched (a remote step writes only on success): run the step elsewhere.
                    exclude = [.. exclude, backend];
                    backend = _placement!.Choose([node], toStep, _denoiser.Denoiser.Description.StateElements, exclude);
                    continue;
                }
            }

            cancellationToken.ThrowIfCancellationRequested();
            node.StepIndex = i + 1;
            node.PathNfe++;
            node.HasPrediction = true;
            Interlocked.Increment(ref _nfe);
            RecordStep(backend, outcome);
        }

        Record(new TreeEvent(TreeEventKind.Advanced, node.Id, node.Path, node.StepIndex));
    }

    private void RecordStep(IStepBackend? backend, StepOutcome outcome)
    {
        var timing = outcome.Timing;
        lock (_gate)
        {
            _queueTime += timing.Queued;
            if (_recentBatches.Add(timing.BatchId))
            {
                _batchesJoined++;
                _recentOrder.Enqueue(timing.BatchId);
                if (_recentOrder.Count > RecentBatches)
                {
                    _recentBatches.Remove(_recentOrder.Dequeue());
                }

                _batchRows += timing.BatchRows;
                _computeTime += timing.Compute;
            }
        }

        if (backend is not null)
        {
            RecordTransfer(backend, outcome.Transfer);
        }
    }

    private void RecordTransfer(IStepBackend backend, Transfer transfer)
    {
        if (backend.Link is null)
        {
            return;
        }

        lock (_gate)
        {
            var usage = _links.TryGetValue(backend.Name, out var u) ? u : new LinkUsage(backend.Name, 0, 0, TimeSpan.Zero, 0);
            _links[backend.Name] = usage with
            {
                BytesSent = usage.BytesSent + transfer.BytesSent,
                BytesReceived = usage.BytesReceived + transfer.BytesReceived,
                TransferTime = usage.TransferTime + transfer.Time,
                Calls = usage.Calls + 1,
            };
        }
    }

    /// <summary>Makes a node whose worker failed local again: its state recomputed by replay, its residence dropped.</summary>
    private async Task RecoverAsync(Node node, HashSet<IStepBackend> exclude, CancellationToken cancellationToken)
    {
        var (state, prediction) = await ReplayAsync(node, node.StepIndex, exclude, cancellationToken).ConfigureAwait(false);
        node.Residence = null;
        node.RemoteReady = Task.CompletedTask;
        node.SetLocal(state, prediction);
    }

    /// <summary>
    /// The state and x0-prediction <paramref name="node"/> had at <paramref name="step"/>, recomputed from the nearest
    /// copy this process holds: the node's own checkpoint, else its parent's state where it branched off (recursively;
    /// a root's prior is always held). Every draw is keyed by the node's path, so the replay is exact. Its NFE is
    /// reported as <see cref="CostAccount.ReplayNfe"/>, outside the budget.
    /// </summary>
    private async Task<(float[] State, float[]? Prediction)> ReplayAsync(Node node, int step, HashSet<IStepBackend> exclude, CancellationToken cancellationToken)
    {
        float[] state;
        float[]? prediction;
        int at;
        if (node.Checkpoint is { } checkpoint && checkpoint.Step <= step)
        {
            (state, prediction, at) = ((float[])checkpoint.State.Clone(), (float[]?)checkpoint.Prediction?.Clone(), checkpoint.Step);
        }
        else if (node.Parent is null)
        {
            (state, prediction, at) = ((float[]?)node.Prior?.Clone() ?? NodeStates.Prior(_sampler, node.Key, _denoiser.Denoiser.Description.StateElements), null, 0);
        }
        else
        {
            var (parentState, parentPrediction) = await ReplayAsync(node.Parent, node.BranchStep, exclude, cancellationToken).ConfigureAwait(false);
            (state, at) = node.Origin switch
            {
                NodeOrigin.Copy => (parentState, node.BranchStep),
                NodeOrigin.Prior => (NodeStates.Prior(_sampler, node.Key, parentState.Length), 0),
                _ => (NodeStates.Renoise(_sampler, parentState, _schedule, node.BranchStep, node.StartStep, node.Key, forFork: node.Origin == NodeOrigin.ForkRenoise), node.StartStep),
            };
            prediction = parentPrediction;
        }

        if (at < step)
        {
            prediction ??= new float[state.Length];
        }

        var backend = _placement?.ChooseForReplay(exclude);
        using var producer = backend is null or LocalBackend ? _denoiser.Producer() : null;
        for (var i = at; i < step; i++)
        {
            var request = NodeStates.Step(_schedule, _sampler, ConditionId, Guidance, node.Key, i, state, prediction!);
            if (backend is null)
            {
                await _denoiser.StepAsync(request, cancellationToken).ConfigureAwait(false);
            }
            else
            {
                try
                {
                    RecordStep(backend, await backend.StepAsync(request, _trajectory, cancellationToken).ConfigureAwait(false));
                }
                catch (Exception ex) when (IsWorkerFault(ex, cancellationToken))
                {
                    exclude = [.. exclude, backend];
                    backend = _placement!.ChooseForReplay(exclude);
                    i--;
                    continue;
                }
            }

            Interlocked.Increment(ref _replayNfe);
            Diagnostics.SearchMetrics.ReplayNfe.Add(1);
        }

        return (state, prediction);
    }

    /// <summary>Creates resident children on the parent's worker once the parent's earlier remote operations are done.</summary>
    private async Task RemoteForkAsync(Task previous, Residence parent, IReadOnlyList<ResidentChild> children)
    {
        await previous.ConfigureAwait(false);
        RecordTransfer(parent.Worker, await parent.Worker.ForkAsync(parent.Handle, children).ConfigureAwait(false));
    }

    /// <summary>Drops the node's copy on a worker (best effort, after its pending remote operations).</summary>
    private static void ReleaseRemote(Node node)
    {
        if (node.Residence is { } residence)
        {
            node.Residence = null;
            _ = ReleaseAfterAsync(node.RemoteReady, residence.Worker, [residence.Handle]);
        }
    }

    private static async Task ReleaseAfterAsync(Task ready, WorkerBackend worker, IReadOnlyList<ulong> handles)
    {
        try
        {
            await ready.ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is WorkerUnavailableException or WorkerDataException or OperationCanceledException)
        {
            return; // nothing was made there, or the worker is gone
        }

        await worker.ReleaseAsync(handles).ConfigureAwait(false);
    }

    /// <summary>The next root's key, index and prior noise, keyed by (seed, root index).</summary>
    private (RngKey Key, int Index, float[] Noise) NextRoot()
    {
        var index = _roots.Count;
        if (index > 0)
        {
            RequireDistinctRoots("start a second root");
        }

        var key = _seedKey.Child(index);
        return (key, index, NodeStates.Prior(_sampler, key, _denoiser.Denoiser.Description.StateElements));
    }

    private Node AddRoot(RngKey key, int index, float[] state, bool isKeyPrior)
    {
        var root = new Node(_nodes.Count, null, index.ToString(System.Globalization.CultureInfo.InvariantCulture), key, NodeOrigin.Root, 0, state, null, 0, Steps)
        {
            // A key's prior noise is drawn again from the key where it is needed (neighbours, replay); only a root
            // whose noise the key cannot give back keeps a copy.
            Prior = isKeyPrior ? null : (float[])state.Clone(),
            IsKeyPrior = isKeyPrior,
        };
        _nodes.Add(root);
        _roots.Add(root);
        return root;
    }

    private Node Add(Node parent, RngKey key, NodeOrigin origin, int step, float[] state, float[]? prediction) =>
        Track(new Node(_nodes.Count, parent, $"{parent.Path}/{parent.Children.Count}", key, origin, step, state, prediction, parent.PathNfe, Steps));

    /// <summary>A child whose state is made on the worker that holds its parent.</summary>
    private Node Add(Node parent, RngKey key, NodeOrigin origin, int step, float[]? state, bool hasPrediction) =>
        Track(new Node(_nodes.Count, parent, $"{parent.Path}/{parent.Children.Count}", key, origin, step, state, null, parent.PathNfe, Steps) { HasPrediction = hasPrediction });

    private Node Track(Node child)
    {
        _nodes.Add(child);
        return child;
    }

    private bool TryReserveNfe(long steps)
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
            // Reserved-but-not-yet-spent steps count against the budget too.
            if (_reservedNfe + steps > max)
            {
                return false;
            }

            _reservedNfe += steps;
            return true;
        }
    }

    private bool TryReserveVerifierCalls(long calls)
    {
        if (WallTimeExhausted())
        {
            return false;
        }

        if (_budget.MaxVerifierCalls is { } max && VerifierCalls + calls > max)
        {
            return false;
        }

        Interlocked.Add(ref _verifierCalls, calls);
        return true;
    }

    private bool WallTimeExhausted() => _budget.MaxWallTime is { } wall && _time.GetElapsedTime(_started) >= wall;

    /// <summary>A deterministic sampler whose roots all start alike (greedy masked decoding) would only duplicate a trajectory: refuse.</summary>
    private void RequireDistinctRoots(string action)
    {
        if (!_sampler.IsStochastic && !_sampler.PriorIsRandom)
        {
            throw new InvalidRequestException("sampler", $"cannot {action}: the {_sampler.Settings} sampler is deterministic and every root starts from the same prompt, so it would duplicate a trajectory; draw tokens with temperature > 0 or use the random policy (forks after step 0 and backtracking re-mask instead).");
        }
    }

    private static void RequireLive(Node node)
    {
        if (node.IsPruned)
        {
            throw new InvalidOperationException($"{node} was pruned; it cannot be used again.");
        }
    }
}

/// <summary>Everything a tree needs, assembled and validated by the engine.</summary>
internal sealed record TreeSettings
{
    public required DenoiserBatcher Denoiser { get; init; }

    public required IReadOnlyList<VerifierBatcher> Verifiers { get; init; }

    public required VerifierEnsemble Ensemble { get; init; }

    public required StepSchedule Schedule { get; init; }

    public required ISampler Sampler { get; init; }

    public required SearchBudget Budget { get; init; }

    public required TimeProvider Time { get; init; }

    public required string Condition { get; init; }

    public required long ConditionId { get; init; }

    public required double Guidance { get; init; }

    public required ulong Seed { get; init; }

    public int ForkRenoiseSteps { get; init; } = 1;

    public Func<CancellationToken, Task<(ForkCalibrationResult Result, bool Ran)>>? CalibrateForkStep { get; init; }

    /// <summary>A masked model's prompt (the sampler was built with it; workers rebuild theirs with it).</summary>
    public Processes.TokenPrompt? Prompt { get; init; }

    /// <summary>Where steps may run besides this process's batcher; null runs everything on <see cref="Denoiser"/>.</summary>
    public TreePlacement? Placement { get; init; }

    public bool RecordEvents { get; init; }
}
