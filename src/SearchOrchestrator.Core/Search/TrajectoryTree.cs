using SearchOrchestrator.Processes;
using SearchOrchestrator.Randomness;
using SearchOrchestrator.Scheduling;
using SearchOrchestrator.Tensors;
using SearchOrchestrator.Verifiers;

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
    private readonly HashSet<long> _batchesJoined = [];
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
    public long NfeRemaining => _budget.MaxNfe is { } max ? Math.Max(0, max - Nfe) : long.MaxValue;

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
            return AddRoot(key, index, state);
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
        if (pivot.Prior is null)
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
            _sampler.Neighbour(pivot.Prior, similarity, state);
            return AddRoot(key, index, state);
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
            for (var j = 0; j < k; j++)
            {
                var key = node.Key.Child(node.Children.Count);
                float[] state;
                var step = node.StepIndex;
                if (IsStochastic)
                {
                    state = (float[])node.MutableState.Clone();
                }
                else if (step == 0)
                {
                    RequireDistinctRoots("fork a root");
                    state = new float[node.MutableState.Length];
                    _sampler.Prior(key, state);
                }
                else
                {
                    step = Math.Max(0, step - ForkRenoiseSteps);
                    state = RenoiseState(node, key, step, forFork: true);
                }

                children[j] = Add(node, key, step, state, (float[]?)node.PredictionOrNull?.Clone());
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
            child = Add(node, key, toStep, RenoiseState(node, key, toStep, forFork: false), (float[]?)node.PredictionOrNull?.Clone());
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

        var running = new List<Task>(nodes.Count);
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

            running.Add(AdvanceOneAsync(node, toStep, cancellationToken));
        }

        await Task.WhenAll(running).ConfigureAwait(false);
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
            if (node.Prediction is null)
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

        var samples = scored.Select(n => n.Prediction!.Value[..SampleShape.ElementCount].ToArray()).ToArray();
        var scores = new float[_verifiers.Count][];
        await Task.WhenAll(_verifiers.Select(async (verifier, v) =>
        {
            var results = await Task.WhenAll(samples.Select(s => verifier.ScoreAsync(SampleShape, s, Condition, cancellationToken))).ConfigureAwait(false);
            scores[v] = [.. results.Select(r => r.Score)];
            foreach (var (_, timing) in results)
            {
                lock (_gate)
                {
                    _queueTime += timing.Queued;
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
    /// reported separately from the search's own.
    /// </summary>
    public async Task<int> CalibratedForkStepAsync(CancellationToken cancellationToken = default)
    {
        var calibrate = _calibrate ?? throw new InvalidOperationException("This tree has no fork calibration.");
        var (result, ran) = await calibrate(cancellationToken).ConfigureAwait(false);
        if (ran)
        {
            Interlocked.Add(ref _calibrationNfe, result.Nfe);
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
                Batches = _batchesJoined.Count,
                MeanBatchSize = _batchesJoined.Count == 0 ? 0 : (double)_batchRows / _batchesJoined.Count,
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
            foreach (var node in _nodes)
            {
                node.Release();
            }
        }
    }

    private async Task AdvanceOneAsync(Node node, int toStep, CancellationToken cancellationToken)
    {
        while (node.StepIndex < toStep)
        {
            var i = node.StepIndex;
            var timing = await _denoiser.StepAsync(
                new StepRequest
                {
                    State = node.MutableState,
                    Prediction = node.PredictionBuffer,
                    StepIndex = i,
                    Timestep = _schedule.TimestepAt(i),
                    AlphaBarFrom = _schedule.AlphaBarAt(i),
                    AlphaBarTo = _schedule.AlphaBarAt(i + 1),
                    Condition = ConditionId,
                    Guidance = Guidance,
                    Sampler = _sampler,
                    Key = node.Key,
                },
                cancellationToken).ConfigureAwait(false);
            cancellationToken.ThrowIfCancellationRequested();
            node.StepIndex = i + 1;
            node.PathNfe++;
            Interlocked.Increment(ref _nfe);
            lock (_gate)
            {
                _queueTime += timing.Queued;
                if (_batchesJoined.Add(timing.BatchId))
                {
                    _batchRows += timing.BatchRows;
                    _computeTime += timing.Compute;
                }
            }
        }

        Record(new TreeEvent(TreeEventKind.Advanced, node.Id, node.Path, node.StepIndex));
    }

    private float[] RenoiseState(Node node, RngKey key, int toStep, bool forFork)
    {
        var state = new float[node.MutableState.Length];
        _sampler.Renoise(node.MutableState, _schedule, node.StepIndex, toStep, key, forFork, state);
        return state;
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
        var noise = new float[_denoiser.Denoiser.Description.StateElements];
        _sampler.Prior(key, noise);
        return (key, index, noise);
    }

    private Node AddRoot(RngKey key, int index, float[] state)
    {
        var root = new Node(_nodes.Count, null, index.ToString(System.Globalization.CultureInfo.InvariantCulture), key, 0, state, null, 0, Steps)
        {
            Prior = (float[])state.Clone(),
        };
        _nodes.Add(root);
        _roots.Add(root);
        return root;
    }

    private Node Add(Node parent, RngKey key, int step, float[] state, float[]? prediction)
    {
        var child = new Node(_nodes.Count, parent, $"{parent.Path}/{parent.Children.Count}", key, step, state, prediction, parent.PathNfe, Steps);
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

    public bool RecordEvents { get; init; }
}
