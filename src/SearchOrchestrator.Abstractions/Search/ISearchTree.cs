namespace SearchOrchestrator.Search;

/// <summary>
/// The tree of trajectories of one search as a strategy sees it, and the only way a strategy touches the denoiser and
/// the verifiers: <see cref="CreateRoot()"/>, <see cref="AdvanceAsync(IReadOnlyList{ISearchNode}, int, CancellationToken)"/>,
/// <see cref="Fork(ISearchNode, int)"/>, <see cref="Renoise"/>, <see cref="VerifyAsync(IReadOnlyList{ISearchNode}, int?, CancellationToken)"/>
/// and <see cref="Prune"/>. Strategies write plain async code against it; the engine's batchers turn the awaits of every
/// search into few large batches, and where a node's state lives and where its steps run is the engine's business.
/// Every node passed in must be one of this tree's, not pruned.
/// </summary>
public interface ISearchTree
{
    /// <summary>N, the number of sampling steps.</summary>
    int Steps { get; }

    /// <summary>Verifier names in this search's ensemble (empty when it has none).</summary>
    IReadOnlyList<string> Verifiers { get; }

    /// <summary>NFE spent so far.</summary>
    long Nfe { get; }

    /// <summary>NFE the budget still allows (<see cref="long.MaxValue"/> without a limit).</summary>
    long NfeRemaining { get; }

    /// <summary>True once any step or verification was refused by the budget.</summary>
    bool BudgetLimited { get; }

    /// <summary>
    /// The request's preview steps j, or null when it sets none: a strategy scores with its own <c>preview_steps</c> when
    /// given, else this, else its own default (<see cref="VerifyAsync(IReadOnlyList{ISearchNode}, int?, CancellationToken)"/>
    /// with null uses this, else 1).
    /// </summary>
    int? PreviewSteps { get; }

    /// <summary>A new root: pure noise at step 0, keyed by (seed, root index).</summary>
    ISearchNode CreateRoot();

    /// <summary>
    /// A new root whose noise is a neighbour of root <paramref name="pivot"/>'s starting noise: λ·x_pivot + √(1 − λ²)·z,
    /// still a standard normal draw, at similarity λ = <paramref name="similarity"/> in [0, 1] (zero-order search, Ma et
    /// al., 2025).
    /// </summary>
    ISearchNode CreateRoot(ISearchNode pivot, double similarity);

    /// <summary>
    /// fork(node, k): k children that start from the node's state and differ only in the noise they draw after it.
    /// Under a deterministic sampler (η = 0) the children are renoised back the request's <c>fork_renoise_steps</c> (a
    /// root's children draw fresh prior noise) so they never duplicate each other. A deterministic sampler whose roots
    /// all start alike (greedy masked decoding) cannot make a root's children differ and refuses with
    /// <see cref="InvalidRequestException"/>.
    /// </summary>
    IReadOnlyList<ISearchNode> Fork(ISearchNode node, int k);

    /// <summary>
    /// fork(node, k) whose children are renoised back <paramref name="renoiseSteps"/> steps (at most to step 0) with their
    /// own noise, under any sampler: under η &gt; 0 a plain fork's children share the node's state and differ only by
    /// the small noise each later step draws, so they stay close; renoised children start apart (for a masked model each
    /// re-masks its own cells). Each child pays the renoised steps again. 0 is <see cref="Fork(ISearchNode, int)"/>.
    /// </summary>
    IReadOnlyList<ISearchNode> Fork(ISearchNode node, int k, int renoiseSteps);

    /// <summary>
    /// renoise(node, j): a child at the earlier, noisier step j = <paramref name="toStep"/> drawn from the forward kernel
    /// q(x_j | x_i) with the child's own noise: the backtracking of DFS and of search over paths. It costs no NFE;
    /// advancing it again does.
    /// </summary>
    ISearchNode Renoise(ISearchNode node, int toStep);

    /// <summary>
    /// Advances every node to <paramref name="toStep"/>, their steps batched with each other and with every other
    /// search. The budget is reserved per node, in list order, before anything runs: a node the budget cannot carry
    /// all the way does not move (its <see cref="ISearchNode.StepIndex"/> says so), and the search is marked
    /// budget-limited.
    /// </summary>
    Task AdvanceAsync(IReadOnlyList<ISearchNode> nodes, int toStep, CancellationToken cancellationToken = default);

    /// <summary>Advances one node to <paramref name="toStep"/>; see <see cref="AdvanceAsync(IReadOnlyList{ISearchNode}, int, CancellationToken)"/>.</summary>
    Task AdvanceAsync(ISearchNode node, int toStep, CancellationToken cancellationToken = default) => AdvanceAsync([node], toStep, cancellationToken);

    /// <summary>
    /// Scores the nodes with every verifier of the search and combines them by its ensemble rule into
    /// <see cref="ISearchNode.Score"/>: a node's raw x0-prediction when <paramref name="previewSteps"/> (null: the
    /// request's, else 1) is 1 or the node is complete, otherwise its preview — j deterministic steps to a clean sample, batched
    /// like any step, counted as preview NFE and against the budget, the node itself unchanged (lookahead scoring,
    /// DSearch, 2025). Nodes the budget cannot cover (preview NFE or verifier calls) are left unscored (and the search is
    /// marked budget-limited). Returns the nodes that were scored. When the request allows it, a remote verifier that
    /// fails is left out of the ensemble from then on (the rest combine without it); when every one is, the search fails.
    /// </summary>
    Task<IReadOnlyList<ISearchNode>> VerifyAsync(IReadOnlyList<ISearchNode> nodes, int? previewSteps, CancellationToken cancellationToken = default);

    /// <summary>Scores the nodes with the request's preview steps; see <see cref="VerifyAsync(IReadOnlyList{ISearchNode}, int?, CancellationToken)"/>.</summary>
    Task<IReadOnlyList<ISearchNode>> VerifyAsync(IReadOnlyList<ISearchNode> nodes, CancellationToken cancellationToken = default) => VerifyAsync(nodes, null, cancellationToken);

    /// <summary>
    /// Scores the nodes' states instead of their x0-predictions: a masked model's committed tokens, each still-masked
    /// position holding the mask id (for Sudoku, a blank), so a verifier judges only what the node has decided (Sudoku:
    /// the constraints its unmasked cells break, which no later step can repair). No preview and no NFE; verifier calls
    /// are counted and budgeted as in <see cref="VerifyAsync(IReadOnlyList{ISearchNode}, int?, CancellationToken)"/>. A
    /// noise-aware verifier gets the time of the state's step. Only for masked models: a strategy that calls it says so
    /// with <see cref="ISearchStrategy.JudgesStates"/>, and the engine refuses it for other processes.
    /// </summary>
    Task<IReadOnlyList<ISearchNode>> VerifyStatesAsync(IReadOnlyList<ISearchNode> nodes, CancellationToken cancellationToken = default);

    /// <summary>
    /// The latest step at which siblings of this model and condition still differ in verifier score
    /// (<c>fork_at: auto</c>), from the engine's cached calibration. The calibration's NFE, when this call ran it, is
    /// reported separately from the search's own and counts against the budget. A strategy that calls it says so with
    /// <see cref="CostPlan.CalibratesForkStep"/>.
    /// </summary>
    Task<int> CalibratedForkStepAsync(CancellationToken cancellationToken = default);

    /// <summary>prune(node): drops the node and its subtree, releasing their tensors at once. Their NFE stays counted.</summary>
    void Prune(ISearchNode node);

    /// <summary>
    /// Uniforms in [0, 1) for the strategy's own draws at <paramref name="step"/> (e.g. resampling particles): a pure
    /// function of the request seed and the step, so a search stays deterministic.
    /// </summary>
    void FillUniform(int step, Span<double> destination);
}
