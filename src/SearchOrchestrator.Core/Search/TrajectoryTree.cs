using System.Globalization;
using SearchOrchestrator.Processes;
using SearchOrchestrator.Randomness;
using SearchOrchestrator.Scheduling;
using SearchOrchestrator.Tensors;
using SearchOrchestrator.Verifiers;

namespace SearchOrchestrator.Search;

/// <summary>
/// The tree of trajectories of one search: the <see cref="ISearchTree"/> strategies run against. It keeps the structure,
/// the nodes' lifecycle, the budget and the events; where a node's state lives and where its steps run is its executor's
/// business (<see cref="LocalExecutor"/>, or <see cref="PlacedExecutor"/> over backends).
/// </summary>
internal sealed class TrajectoryTree : ISearchTree
{
    private readonly List<Node> _nodes = [];
    private readonly List<Node> _roots = [];
    private readonly TreeVerification _verification;
    private readonly VerifierEnsemble _ensemble;
    private readonly ISampler _sampler;
    private readonly int _elements;
    private readonly RngKey _seedKey;
    private readonly Func<CancellationToken, Task<(ForkCalibrationResult Result, bool Ran)>>? _calibrate;
    private readonly object _gate = new();
    private readonly PromptEmbeddingCache.PromptLease? _prompts;
    private readonly NodePreviews? _previews;
    private int _encodingCounted;

    internal TrajectoryTree(TreeSettings settings)
    {
        Executor = settings.Executor;
        Ledger = settings.Ledger;
        _verification = new TreeVerification(settings);
        _ensemble = settings.Ensemble;
        _sampler = settings.Sampler;
        _elements = settings.Elements;
        _seedKey = RngKey.ForSeed(settings.Seed);
        _calibrate = settings.CalibrateForkStep;
        _prompts = settings.Prompts;
        Steps = settings.Steps;
        SampleShape = settings.Shape;
        ForkRenoiseSteps = settings.ForkRenoiseSteps;
        PreviewSteps = settings.PreviewSteps;
        _previews = settings.Previews;
    }

    /// <inheritdoc />
    public int? PreviewSteps { get; }

    /// <inheritdoc />
    public int Steps { get; }

    /// <summary>The shape of one sample.</summary>
    public SampleShape SampleShape { get; }

    /// <summary>True when a step draws fresh randomness (η &gt; 0, or sampled tokens), so siblings diverge on their own.</summary>
    public bool IsStochastic => _sampler.IsStochastic;

    /// <summary>How many steps a fork under a deterministic sampler renoises its children back, so they differ.</summary>
    public int ForkRenoiseSteps { get; }

    /// <inheritdoc />
    public IReadOnlyList<string> Verifiers => _ensemble.Verifiers;

    /// <summary>The roots, in creation order.</summary>
    public IReadOnlyList<Node> Roots => _roots;

    /// <inheritdoc />
    public long Nfe => Ledger.Nfe;

    /// <inheritdoc />
    public long NfeRemaining => Ledger.NfeRemaining;

    /// <summary>Verifier calls made so far.</summary>
    public long VerifierCalls => Ledger.VerifierCalls;

    /// <inheritdoc />
    public bool BudgetLimited => Ledger.BudgetLimited;

    /// <inheritdoc cref="ISearchTree.CreateRoot()"/>
    public Node CreateRoot() => AddRoot(null, 0);

    /// <inheritdoc cref="ISearchTree.CreateRoot(ISearchNode, double)"/>
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

        return AddRoot(pivot, similarity);
    }

    /// <inheritdoc cref="ISearchTree.Fork(ISearchNode, int)"/>
    public IReadOnlyList<Node> Fork(Node node, int k) => Fork(node, k, 0);

    /// <inheritdoc cref="ISearchTree.Fork(ISearchNode, int, int)"/>
    public IReadOnlyList<Node> Fork(Node node, int k, int renoiseSteps)
    {
        ArgumentNullException.ThrowIfNull(node);
        ArgumentOutOfRangeException.ThrowIfLessThan(k, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(renoiseSteps);
        RequireLive(node);
        var (start, step) = node.StepIndex == 0 && (renoiseSteps > 0 || !IsStochastic) ? (ChildStart.Prior, 0)
            : renoiseSteps > 0 ? (ChildStart.ForkRenoise, Math.Max(0, node.StepIndex - renoiseSteps))
            : IsStochastic ? (ChildStart.Copy, node.StepIndex)
            : (ChildStart.ForkRenoise, Math.Max(0, node.StepIndex - ForkRenoiseSteps));
        if (start == ChildStart.Prior)
        {
            RequireDistinctRoots("fork a root");
        }

        var children = Branch(node, start, step, k);
        foreach (var child in children)
        {
            Ledger.Record(new TreeEvent(TreeEventKind.Forked, child.Id, child.Path, child.StepIndex, node.Id));
        }

        return children;
    }

    /// <inheritdoc cref="ISearchTree.Renoise"/>
    public Node Renoise(Node node, int toStep)
    {
        ArgumentNullException.ThrowIfNull(node);
        RequireLive(node);
        if (toStep < 0 || toStep >= node.StepIndex)
        {
            throw new ArgumentOutOfRangeException(nameof(toStep), toStep, $"renoise goes back to an earlier step than {node.StepIndex}.");
        }

        var child = Branch(node, ChildStart.Renoise, toStep, 1)[0];
        Ledger.Record(new TreeEvent(TreeEventKind.Renoised, child.Id, child.Path, toStep, node.Id));
        return child;
    }

    /// <summary>Advances one node to <paramref name="toStep"/>.</summary>
    public Task AdvanceAsync(Node node, int toStep, CancellationToken cancellationToken = default) => AdvanceAsync([node], toStep, cancellationToken);

    /// <inheritdoc cref="ISearchTree.AdvanceAsync(IReadOnlyList{ISearchNode}, int, CancellationToken)"/>
    public async Task AdvanceAsync(IReadOnlyList<Node> nodes, int toStep, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(nodes);
        if (toStep < 0 || toStep > Steps)
        {
            throw new ArgumentOutOfRangeException(nameof(toStep), toStep, $"Steps run from 0 to {Steps}.");
        }

        var accepted = new List<Node>(nodes.Count);
        var refused = 0;
        foreach (var node in nodes)
        {
            RequireLive(node);
            var steps = toStep - node.StepIndex;
            if (steps <= 0)
            {
                continue;
            }

            if (!Ledger.TryReserveNfe(steps))
            {
                refused++;
                Ledger.Record(new TreeEvent(TreeEventKind.BudgetLimited, -1, string.Empty, node.StepIndex));
                continue;
            }

            accepted.Add(node);
        }

        if (refused > 0)
        {
            Ledger.Refuse("advance", refused);
        }

        await EncodePromptsAsync(cancellationToken).ConfigureAwait(false);

        await Executor.AdvanceAsync(accepted, toStep, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Scores the nodes with the request's preview steps; see <see cref="VerifyAsync(IReadOnlyList{Node}, int?, CancellationToken)"/>.</summary>
    public Task<IReadOnlyList<Node>> VerifyAsync(IReadOnlyList<Node> nodes, CancellationToken cancellationToken = default) => VerifyAsync(nodes, null, cancellationToken);

    /// <inheritdoc cref="ISearchTree.VerifyAsync(IReadOnlyList{ISearchNode}, int?, CancellationToken)"/>
    public Task<IReadOnlyList<Node>> VerifyAsync(IReadOnlyList<Node> nodes, int? previewSteps, CancellationToken cancellationToken = default) =>
        _verification.VerifyAsync(nodes, previewSteps ?? PreviewSteps ?? 1, states: false, cancellationToken);

    /// <inheritdoc cref="ISearchTree.VerifyStatesAsync"/>
    public Task<IReadOnlyList<Node>> VerifyStatesAsync(IReadOnlyList<Node> nodes, CancellationToken cancellationToken = default) =>
        _verification.VerifyAsync(nodes, 1, states: true, cancellationToken);

    /// <inheritdoc />
    public async Task<int> CalibratedForkStepAsync(CancellationToken cancellationToken = default)
    {
        var calibrate = _calibrate ?? throw new InvalidOperationException("This tree has no fork calibration.");
        var (result, ran) = await calibrate(cancellationToken).ConfigureAwait(false);
        if (ran)
        {
            Ledger.AddCalibration(result.Nfe);
        }

        return result.ForkStep;
    }

    /// <inheritdoc cref="ISearchTree.Prune"/>
    public void Prune(Node node)
    {
        ArgumentNullException.ThrowIfNull(node);
        Ledger.Record(new TreeEvent(TreeEventKind.Pruned, node.Id, node.Path, node.StepIndex));
        Release([.. node.Subtree()]);
    }

    /// <summary>
    /// Brings the current state (and x0-prediction) of every node resident on a worker to this process: fetched from
    /// the worker, or, when the worker is gone, recomputed from the nearest ancestor held here by deterministic replay.
    /// </summary>
    public Task MaterializeAsync(IReadOnlyList<Node> nodes, CancellationToken cancellationToken = default) =>
        Executor.MaterializeAsync(nodes ?? throw new ArgumentNullException(nameof(nodes)), cancellationToken);

    /// <summary>The cost account so far.</summary>
    public CostAccount Account()
    {
        lock (_gate)
        {
            return Ledger.Account(_nodes.Where(n => n.EndsATrajectory).Sum(n => n.PathNfe));
        }
    }

    /// <summary>A snapshot for progress reports.</summary>
    public SearchProgress Progress()
    {
        lock (_gate)
        {
            var best = _nodes.Where(n => n.Score is not null).Select(n => n.Score!.Value).DefaultIfEmpty(double.NaN).Max();
            return new SearchProgress(Nfe, VerifierCalls, _nodes.Count, _nodes.Count == 0 ? 0 : _nodes.Max(n => n.StepIndex), double.IsNaN(best) ? null : best, Ledger.Elapsed)
            {
                EncoderCalls = Ledger.EncoderCalls,
                DecoderCalls = Ledger.DecoderCalls,
                PreviewNfe = Ledger.PreviewNfe,
            };
        }
    }

    /// <inheritdoc />
    public void FillUniform(int step, Span<double> destination) => _seedKey.Child(int.MaxValue).FillUniform(NoiseUse.Resample, step, destination);

    ISearchNode ISearchTree.CreateRoot() => CreateRoot();

    ISearchNode ISearchTree.CreateRoot(ISearchNode pivot, double similarity) => CreateRoot(Own(pivot), similarity);

    IReadOnlyList<ISearchNode> ISearchTree.Fork(ISearchNode node, int k) => Fork(Own(node), k);

    IReadOnlyList<ISearchNode> ISearchTree.Fork(ISearchNode node, int k, int renoiseSteps) => Fork(Own(node), k, renoiseSteps);

    ISearchNode ISearchTree.Renoise(ISearchNode node, int toStep) => Renoise(Own(node), toStep);

    Task ISearchTree.AdvanceAsync(IReadOnlyList<ISearchNode> nodes, int toStep, CancellationToken cancellationToken) => AdvanceAsync(Own(nodes), toStep, cancellationToken);

    async Task<IReadOnlyList<ISearchNode>> ISearchTree.VerifyAsync(IReadOnlyList<ISearchNode> nodes, int? previewSteps, CancellationToken cancellationToken) =>
        await VerifyAsync(Own(nodes), previewSteps, cancellationToken).ConfigureAwait(false);

    async Task<IReadOnlyList<ISearchNode>> ISearchTree.VerifyStatesAsync(IReadOnlyList<ISearchNode> nodes, CancellationToken cancellationToken) =>
        await VerifyStatesAsync(Own(nodes), cancellationToken).ConfigureAwait(false);

    void ISearchTree.Prune(ISearchNode node) => Prune(Own(node));

    /// <summary>The tree's own <see cref="Node"/> behind a strategy's <paramref name="node"/>; a node of another tree is refused.</summary>
    internal Node Own(ISearchNode node)
    {
        ArgumentNullException.ThrowIfNull(node);
        lock (_gate)
        {
            return node is Node own && own.Id < _nodes.Count && ReferenceEquals(_nodes[own.Id], own)
                ? own
                : throw new ArgumentException($"{node} is not a node of this search's tree.", nameof(node));
        }
    }

    private Node[] Own(IReadOnlyList<ISearchNode> nodes) => [.. (nodes ?? throw new ArgumentNullException(nameof(nodes))).Select(Own)];

    /// <summary>The search's books: budget, cost account and events.</summary>
    internal TreeLedger Ledger { get; }

    /// <summary>What carries out the tree's decisions on node states.</summary>
    internal ITreeExecutor Executor { get; }

    /// <summary>A pipeline's decoder and which verifiers score its images; null for other models.</summary>
    internal TreeDecoding? Decoding => _verification.Decoding;

    /// <summary>Releases every node's tensors and the prompt embeddings (the search is over).</summary>
    internal void ReleaseAll()
    {
        lock (_gate)
        {
            Release(_nodes);
        }

        _prompts?.Dispose();
    }

    /// <inheritdoc cref="TreeVerification.DecodeAsync"/>
    internal Task DecodeAsync(IReadOnlyList<Node> nodes, CancellationToken cancellationToken) => _verification.DecodeAsync(nodes, cancellationToken);

    /// <summary>Encodes the search's prompts (once; later calls wait for the same encoding) and counts the calls and cache hits.</summary>
    private async Task EncodePromptsAsync(CancellationToken cancellationToken)
    {
        if (_prompts is null)
        {
            return;
        }

        var (calls, hits) = await _prompts.EncodeAsync(cancellationToken).ConfigureAwait(false);
        if (Interlocked.Exchange(ref _encodingCounted, 1) == 0)
        {
            Ledger.AddEncoding(calls, hits);
        }
    }

    private void Release(IReadOnlyList<Node> nodes)
    {
        Executor.Release(nodes);
        foreach (var node in nodes)
        {
            node.Release();
        }
    }

    /// <summary>Adds <paramref name="k"/> children of <paramref name="parent"/> that start as <paramref name="start"/> at <paramref name="step"/>; the executor makes their states.</summary>
    private List<Node> Branch(Node parent, ChildStart start, int step, int k)
    {
        lock (_gate)
        {
            var children = new List<Node>(k);
            for (var j = 0; j < k; j++)
            {
                var child = new Node(_nodes.Count, parent, $"{parent.Path}/{parent.Children.Count}", parent.Key.Child(parent.Children.Count), start, step, parent.PathNfe, Steps);
                _nodes.Add(child);
                children.Add(child);
            }

            Executor.Branch(parent, children);
            return children;
        }
    }

    /// <summary>The next root: prior noise keyed by (seed, root index), or a neighbour of <paramref name="pivot"/>'s.</summary>
    private Node AddRoot(Node? pivot, double similarity)
    {
        lock (_gate)
        {
            if (_roots.Count > 0)
            {
                RequireDistinctRoots("start a second root");
            }

            var key = _seedKey.Child(_roots.Count);
            var state = NodeStates.Prior(_sampler, key, _elements);
            if (pivot is not null)
            {
                _sampler.Neighbour(pivot.Prior ?? NodeStates.Prior(_sampler, pivot.Key, state.Length), similarity, state);
            }

            var root = new Node(_nodes.Count, null, _roots.Count.ToString(CultureInfo.InvariantCulture), key, ChildStart.Prior, 0, 0, Steps)
            {
                // A key's prior noise is drawn again from the key where it is needed (neighbours, replay); only a root
                // whose noise the key cannot give back keeps a copy.
                Prior = pivot is null ? null : (float[])state.Clone(),
                IsKeyPrior = pivot is null,
            };
            root.SetLocal(state, null);
            _nodes.Add(root);
            _roots.Add(root);
            return root;
        }
    }

    /// <summary>A deterministic sampler whose roots all start alike (greedy masked decoding) would only duplicate a trajectory: refuse.</summary>
    private void RequireDistinctRoots(string action)
    {
        if (!_sampler.IsStochastic && !_sampler.PriorIsRandom)
        {
            throw new InvalidRequestException("sampler", $"cannot {action}: the {_sampler.Settings} sampler is deterministic and every root starts from the same prompt, so it would duplicate a trajectory; draw tokens with temperature > 0 or use the random policy (forks after step 0 and backtracking re-mask instead).");
        }
    }

    internal static void RequireLive(Node node)
    {
        if (node.IsPruned)
        {
            throw new InvalidOperationException($"{node} was pruned; it cannot be used again.");
        }
    }
}
