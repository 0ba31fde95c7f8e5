using System.Globalization;
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
/// <see cref="Fork"/>, <see cref="Renoise"/>, <see cref="VerifyAsync(IReadOnlyList{Node}, int?, CancellationToken)"/> and <see cref="Prune"/>. Strategies write plain
/// async code against it; the batchers underneath turn the awaits of every search into few large batches.
/// The tree keeps the structure, the nodes' lifecycle, the budget and the events; where a node's state lives and where
/// its steps run is its executor's business (<see cref="LocalExecutor"/>, or <see cref="PlacedExecutor"/> over backends).
/// </summary>
public sealed class TrajectoryTree
{
    private readonly List<Node> _nodes = [];
    private readonly List<Node> _roots = [];
    private readonly IReadOnlyList<VerifierBatcher> _verifiers;
    private readonly VerifierEnsemble _ensemble;
    private readonly bool _leaveOutFailedVerifiers;
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
        _verifiers = settings.Verifiers;
        _ensemble = settings.Ensemble;
        _leaveOutFailedVerifiers = settings.LeaveOutFailedVerifiers;
        _sampler = settings.Sampler;
        _elements = settings.Elements;
        _seedKey = RngKey.ForSeed(settings.Seed);
        _calibrate = settings.CalibrateForkStep;
        _prompts = settings.Prompts;
        Decoding = settings.Decoding;
        Steps = settings.Steps;
        SampleShape = settings.Shape;
        Condition = settings.Condition;
        Seed = settings.Seed;
        ForkRenoiseSteps = settings.ForkRenoiseSteps;
        PreviewSteps = settings.PreviewSteps;
        _previews = settings.Previews;
    }

    /// <summary>The request's preview steps j: what <see cref="VerifyAsync(IReadOnlyList{Node}, int?, CancellationToken)"/> uses when a strategy sets none.</summary>
    public int PreviewSteps { get; }

    /// <summary>N, the number of sampling steps.</summary>
    public int Steps { get; }

    /// <summary>The condition label every node is generated for.</summary>
    public string Condition { get; }

    /// <summary>The request seed; node keys derive from it.</summary>
    public ulong Seed { get; }

    /// <summary>The shape of one sample.</summary>
    public SampleShape SampleShape { get; }

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
    public long Nfe => Ledger.Nfe;

    /// <summary>NFE the budget still allows (long.MaxValue without a limit).</summary>
    public long NfeRemaining => Ledger.NfeRemaining;

    /// <summary>Verifier calls made so far.</summary>
    public long VerifierCalls => Ledger.VerifierCalls;

    /// <summary>True once any step or verification was refused by the budget.</summary>
    public bool BudgetLimited => Ledger.BudgetLimited;

    /// <summary>A new root: pure noise at step 0, keyed by (seed, root index).</summary>
    public Node CreateRoot() => AddRoot(null, 0);

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

        return AddRoot(pivot, similarity);
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
        var (start, step) = IsStochastic ? (ChildStart.Copy, node.StepIndex)
            : node.StepIndex == 0 ? (ChildStart.Prior, 0)
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

        var child = Branch(node, ChildStart.Renoise, toStep, 1)[0];
        Ledger.Record(new TreeEvent(TreeEventKind.Renoised, child.Id, child.Path, toStep, node.Id));
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

    /// <summary>
    /// Scores the nodes with every verifier of the search and combines them by its ensemble rule into
    /// <see cref="Node.Score"/>: a node's raw x0-prediction when <paramref name="previewSteps"/> (null: the request's
    /// <see cref="PreviewSteps"/>) is 1 or the node is complete, otherwise its preview — j deterministic steps to a clean
    /// sample, batched like any step, counted as preview NFE and against the budget, the node itself unchanged. Nodes
    /// the budget cannot cover (preview NFE or verifier calls) are left unscored (and the search is marked
    /// budget-limited). Returns the nodes that were scored. When the request allows it, a remote verifier that fails is
    /// left out of the ensemble from then on (the rest combine without it); when every one is, the search fails.
    /// </summary>
    public async Task<IReadOnlyList<Node>> VerifyAsync(IReadOnlyList<Node> nodes, int? previewSteps, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(nodes);
        if (_verifiers.Count == 0)
        {
            throw new InvalidOperationException("This search has no verifiers to score with.");
        }

        var j = previewSteps ?? PreviewSteps;
        ArgumentOutOfRangeException.ThrowIfLessThan(j, 1, nameof(previewSteps));

        var active = Enumerable.Range(0, _verifiers.Count).Where(v => !Ledger.IsLeftOut(_ensemble.Verifiers[v])).ToList();
        var names = active.Select(v => _ensemble.Verifiers[v]).ToList();
        var scored = new List<Node>(nodes.Count);
        foreach (var node in nodes)
        {
            RequireLive(node);
            if (!node.HasPrediction)
            {
                throw new InvalidOperationException($"{node} has no x0-prediction yet; advance it at least one step before verifying.");
            }

            var previewNfe = PlanContext.PreviewStepCount(j, node.StepIndex, Steps);
            if (previewNfe > 0 && !Ledger.TryReserveNfe(previewNfe))
            {
                Ledger.Refuse("preview", nodes.Count - scored.Count);
                break;
            }

            var decoderCalls = Decoding is { AnyPixels: true } && (previewNfe > 0 || (node.Pixels is null && !scored.Contains(node))) ? 1 : 0;
            if (Ledger.TryReserveVerification(names, decoderCalls) is { } refusal)
            {
                Ledger.Refuse(refusal, nodes.Count - scored.Count);
                break;
            }

            scored.Add(node);
        }

        if (scored.Count == 0)
        {
            return scored;
        }

        var previews = await PreviewAsync(scored, j, cancellationToken).ConfigureAwait(false);
        if (Decoding is { AnyPixels: true })
        {
            await DecodeAsync([.. scored.Where(n => !previews.ContainsKey(n))], cancellationToken).ConfigureAwait(false);
            await DecodePreviewsAsync(previews, cancellationToken).ConfigureAwait(false);
        }

        var results = await Task.WhenAll(active.Select(v => ScoreOrLeaveOutAsync(v, scored, previews, cancellationToken))).ConfigureAwait(false);
        var kept = Enumerable.Range(0, active.Count).Where(k => results[k] is not null).ToList();
        if (kept.Count == 0)
        {
            var left = Ledger.VerifiersLeftOut;
            throw new VerifierFailedException(left[^1].Name, $"every verifier of this search failed and was left out: {string.Join(" ", left.Select(l => l.Reason))}", new NoBackendException(left[^1].Reason));
        }

        var scores = kept.Select(k => results[k]!).ToList();
        var combined = _ensemble.Combine(scores, [.. kept.Select(k => names[k])]);
        for (var i = 0; i < scored.Count; i++)
        {
            foreach (var k in kept)
            {
                scored[i].SetScore(names[k], results[k]![i]);
            }

            scored[i].Score = combined[i];
            scored[i].ScoredAtStep = scored[i].StepIndex;
            Ledger.Record(new TreeEvent(TreeEventKind.Verified, scored[i].Id, scored[i].Path, scored[i].StepIndex, Score: combined[i]));
        }

        return scored;
    }

    /// <summary>
    /// Scores with verifier <paramref name="v"/> (a node with a preview by its preview); null when it failed and was left
    /// out (a remote one, and the request allows it).
    /// </summary>
    private async Task<float[]?> ScoreOrLeaveOutAsync(int v, IReadOnlyList<Node> nodes, Dictionary<Node, Preview> previews, CancellationToken cancellationToken)
    {
        var batcher = _verifiers[v];
        try
        {
            if (Decoding is { } decoding && decoding.PixelVerifiers[v])
            {
                // Decoded images are clean samples: a time-taking verifier gets no time for them.
                return await ScoreSamplesAsync(batcher, decoding.Decoder.Description.ImageShape, [.. nodes.Select(n => (previews.TryGetValue(n, out var p) ? p.Pixels! : n.Pixels!, (float?)null))], cancellationToken).ConfigureAwait(false);
            }

            if (previews.Count == 0)
            {
                return await Executor.ScoreAsync(batcher.Name, batcher, nodes, cancellationToken).ConfigureAwait(false);
            }

            var elements = SampleShape.ElementCount;
            return await ScoreSamplesAsync(batcher, SampleShape, [.. nodes.Select(n => previews.TryGetValue(n, out var p)
                ? (p.Sample[..elements], (float?)p.Time)
                : (n.Prediction!.Value[..elements].ToArray(), _previews!.PredictionTime(n)))], cancellationToken).ConfigureAwait(false);
        }
        catch (VerifierFailedException ex) when (_leaveOutFailedVerifiers && batcher.Kind is VerifierKinds.KServe or VerifierKinds.Worker && !cancellationToken.IsCancellationRequested)
        {
            Ledger.LeaveOut(batcher.Name, ex.Message);
            return null;
        }
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
            Ledger.AddCalibration(result.Nfe);
        }

        return result.ForkStep;
    }

    /// <summary>prune(node): drops the node and its subtree, releasing their tensors at once. Their NFE stays counted.</summary>
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

    /// <summary>The search's books: budget, cost account and events.</summary>
    internal TreeLedger Ledger { get; }

    /// <summary>What carries out the tree's decisions on node states.</summary>
    internal ITreeExecutor Executor { get; }

    /// <summary>A pipeline's decoder and which verifiers score its images; null for other models.</summary>
    internal TreeDecoding? Decoding { get; }

    /// <summary>Releases every node's tensors and the prompt embeddings (the search is over).</summary>
    internal void ReleaseAll()
    {
        lock (_gate)
        {
            Release(_nodes);
        }

        _prompts?.Dispose();
    }

    /// <summary>
    /// Decodes the x0-predictions of the nodes not yet decoded at their step (a pipeline's; held here) and keeps the images
    /// with the nodes. The caller has counted the decoder calls.
    /// </summary>
    internal async Task DecodeAsync(IReadOnlyList<Node> nodes, CancellationToken cancellationToken)
    {
        var decoding = Decoding ?? throw new InvalidOperationException("This search has no decoder.");
        var latent = decoding.Decoder.Description.LatentShape.ElementCount;
        var pending = nodes.Where(n => n.Pixels is null).Distinct().ToList();
        await Executor.MaterializeAsync(pending, cancellationToken).ConfigureAwait(false); // latents resident on a worker come here first
        var images = await Task.WhenAll(pending.Select(n => decoding.Decoder.DecodeAsync(n.Prediction!.Value[..latent], cancellationToken))).ConfigureAwait(false);
        for (var i = 0; i < pending.Count; i++)
        {
            pending[i].SetPixels(images[i].Image);
            Ledger.AddQueueTime(images[i].Timing.Queued);
        }
    }

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

    /// <summary>
    /// The previews of the nodes short of the last step when <paramref name="previewSteps"/> &gt; 1, by node (empty when
    /// there are none); nodes resident elsewhere are brought here first.
    /// </summary>
    private async Task<Dictionary<Node, Preview>> PreviewAsync(IReadOnlyList<Node> nodes, int previewSteps, CancellationToken cancellationToken)
    {
        var previewed = nodes.Where(n => PlanContext.PreviewStepCount(previewSteps, n.StepIndex, Steps) > 0).Distinct().ToList();
        if (previewed.Count == 0)
        {
            return [];
        }

        var previews = _previews ?? throw new InvalidOperationException("This tree cannot preview.");
        await Executor.MaterializeAsync(nodes, cancellationToken).ConfigureAwait(false);
        var results = await previews.RunAsync(previewed, previewSteps, Ledger, cancellationToken).ConfigureAwait(false);
        return previewed.Zip(results).ToDictionary(p => p.First, p => p.Second);
    }

    /// <summary>Decodes each preview's latent into its image (a pipeline's pixel verifiers score those). The caller has counted the decoder calls.</summary>
    private async Task DecodePreviewsAsync(Dictionary<Node, Preview> previews, CancellationToken cancellationToken)
    {
        var decoder = Decoding!.Decoder;
        var latent = decoder.Description.LatentShape.ElementCount;
        var nodes = previews.Keys.ToList();
        var images = await Task.WhenAll(nodes.Select(n => decoder.DecodeAsync(previews[n].Sample.AsMemory(0, latent), cancellationToken))).ConfigureAwait(false);
        for (var i = 0; i < nodes.Count; i++)
        {
            previews[nodes[i]] = previews[nodes[i]] with { Pixels = images[i].Image };
            Ledger.AddQueueTime(images[i].Timing.Queued);
        }
    }

    /// <summary>Scores samples (each with the model time it was predicted at, or none) with one verifier.</summary>
    private async Task<float[]> ScoreSamplesAsync(VerifierBatcher batcher, SampleShape shape, IReadOnlyList<(float[] Sample, float? Time)> samples, CancellationToken cancellationToken)
    {
        var results = await Task.WhenAll(samples.Select(s => batcher.ScoreAsync(shape, s.Sample, Condition, s.Time, cancellationToken: cancellationToken))).ConfigureAwait(false);
        foreach (var (_, timing, transfer) in results)
        {
            Ledger.AddQueueTime(timing.Queued);
            Ledger.RecordVerifierTransfer(batcher.Name, transfer);
        }

        return [.. results.Select(r => r.Score)];
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

    private static void RequireLive(Node node)
    {
        if (node.IsPruned)
        {
            throw new InvalidOperationException($"{node} was pruned; it cannot be used again.");
        }
    }
}
