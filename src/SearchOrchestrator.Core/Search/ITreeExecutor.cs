using SearchOrchestrator.Scheduling;

namespace SearchOrchestrator.Search;

/// <summary>
/// The execution seam under <see cref="TrajectoryTree"/>: it carries out the tree's decisions on node states. The tree
/// keeps the structure, the node lifecycle, the budget and the events, and knows nothing of where a state lives;
/// <see cref="LocalExecutor"/> runs everything in this process, <see cref="PlacedExecutor"/> places work over backends
/// with residency and replay.
/// </summary>
internal interface ITreeExecutor
{
    /// <summary>Makes the states of <paramref name="parent"/>'s new <paramref name="children"/> (forks and renoises), as each one's origin and start step say.</summary>
    void Branch(Node parent, IReadOnlyList<Node> children);

    /// <summary>Advances <paramref name="nodes"/> (budget already reserved) to <paramref name="toStep"/>, counting what they spend.</summary>
    Task AdvanceAsync(IReadOnlyList<Node> nodes, int toStep, CancellationToken cancellationToken);

    /// <summary>Brings every node's current state (and x0-prediction) to this process.</summary>
    Task MaterializeAsync(IReadOnlyList<Node> nodes, CancellationToken cancellationToken);

    /// <summary>Scores the nodes' x0-predictions with one verifier of the search; the scores are in <paramref name="nodes"/> order.</summary>
    Task<float[]> ScoreAsync(string verifier, VerifierBatcher batcher, IReadOnlyList<Node> nodes, CancellationToken cancellationToken);

    /// <summary>
    /// Decodes, where they are kept, the x0-predictions of those <paramref name="nodes"/> resident on a backend that serves
    /// the decoder of pipeline <paramref name="model"/> (unless Workers:DecoderPlacement keeps decoding here): only handles
    /// go there, only images come back. Returns the images by node; the other nodes are the caller's to decode.
    /// </summary>
    Task<IReadOnlyDictionary<Node, float[]>> DecodeWhereResidentAsync(string model, IReadOnlyList<Node> nodes, CancellationToken cancellationToken);

    /// <summary>Drops whatever the nodes hold outside this process (the tree frees their local tensors).</summary>
    void Release(IReadOnlyList<Node> nodes);
}

/// <summary>What an executor needs of its search besides the nodes.</summary>
/// <param name="Denoiser">This process's batcher of the search's denoiser.</param>
/// <param name="Steps">The search's step loop: schedule, sampler, condition and guidance.</param>
/// <param name="Shape">The shape of one sample.</param>
/// <param name="Elements">The floats of one node state.</param>
/// <param name="Condition">The condition label verifiers score against.</param>
/// <param name="Ledger">Where costs are counted and events recorded.</param>
internal sealed record ExecutorSettings(DenoiserBatcher Denoiser, StepLoop Steps, Tensors.SampleShape Shape, int Elements, string Condition, TreeLedger Ledger)
{
    /// <summary>A text model's sample as its decoded answer, for verifiers that score text; null for other models.</summary>
    public Func<float[], string?>? Text { get; init; }
}
