using SearchOrchestrator.Randomness;

namespace SearchOrchestrator.Search;

/// <summary>
/// One trajectory state in a search tree: the tensor at step index i, its RNG key (a pure function of the request
/// seed and this node's path), its parent and children, and its latest verifier scores. A node moves along its
/// trajectory as it is advanced; fork and renoise create children.
/// </summary>
public sealed class Node
{
    private readonly List<Node> _children = [];
    private readonly Dictionary<string, float> _scores = new(StringComparer.Ordinal);
    private float[]? _state;
    private float[]? _prediction;

    internal Node(int id, Node? parent, string path, RngKey key, int stepIndex, float[] state, float[]? prediction, long pathNfe, int steps)
    {
        Id = id;
        Parent = parent;
        Path = path;
        Key = key;
        StepIndex = stepIndex;
        _state = state;
        _prediction = prediction;
        PathNfe = pathNfe;
        InitialPathNfe = pathNfe;
        Steps = steps;
        parent?._children.Add(this);
    }

    /// <summary>The node's number within its search, in creation order.</summary>
    public int Id { get; }

    /// <summary>The node it was forked or renoised from; null for a root.</summary>
    public Node? Parent { get; }

    /// <summary>Its children, in creation order.</summary>
    public IReadOnlyList<Node> Children => _children;

    /// <summary>The path from the root: the root's index, then the child index at each level (<c>0/2/1</c>).</summary>
    public string Path { get; }

    /// <summary>The RNG key every noise draw of this node comes from.</summary>
    public RngKey Key { get; }

    /// <summary>The step index i (0 = pure noise, N = clean).</summary>
    public int StepIndex { get; internal set; }

    /// <summary>N, the steps of the search this node belongs to.</summary>
    public int Steps { get; }

    /// <summary>True at step index N: the state is the finished sample.</summary>
    public bool IsComplete => StepIndex == Steps;

    /// <summary>
    /// The NFE a single run along this node's path would have spent to reach it: its ancestors' steps up to the
    /// point it branched off, plus its own. Summed over leaves, this is the cost without sharing.
    /// </summary>
    public long PathNfe { get; internal set; }

    /// <summary>
    /// True when this node's path is a trajectory of its own rather than a prefix of a child's: it has no child that
    /// branched off where this node stopped. Summing <see cref="PathNfe"/> over such nodes gives the cost without sharing.
    /// </summary>
    public bool EndsATrajectory => !_children.Exists(c => c.InitialPathNfe == PathNfe);

    /// <summary>The path NFE this node started with (its parent's when it branched off).</summary>
    internal long InitialPathNfe { get; }

    /// <summary>True once pruned (or released at the end of the search); its tensors are gone.</summary>
    public bool IsPruned => _state is null;

    /// <summary>The state x_i.</summary>
    /// <exception cref="InvalidOperationException">The node was pruned.</exception>
    public ReadOnlyMemory<float> State => _state ?? throw Released();

    /// <summary>
    /// The x0-prediction verifiers score: the finished sample once complete, otherwise the denoiser's estimate from
    /// its latest step (made at step i − 1); null before the first step.
    /// </summary>
    public ReadOnlyMemory<float>? Prediction
    {
        get
        {
            if (IsPruned)
            {
                throw Released();
            }

            var source = IsComplete ? _state : _prediction;
            if (source is null)
            {
                return null;
            }

            return source;
        }
    }

    /// <summary>The combined score of the latest verification (higher is better), or null if never verified.</summary>
    public double? Score { get; internal set; }

    /// <summary>The step index at which <see cref="Score"/> was measured.</summary>
    public int? ScoredAtStep { get; internal set; }

    /// <summary>The latest score of each verifier, by name.</summary>
    public IReadOnlyDictionary<string, float> Scores => _scores;

    internal float[] MutableState => _state ?? throw Released();

    internal float[] PredictionBuffer => _prediction ??= new float[MutableState.Length];

    internal float[]? PredictionOrNull => _prediction;

    /// <summary>A root's starting noise, kept so zero-order search can draw neighbours of it after the root has moved.</summary>
    internal float[]? Prior { get; set; }

    internal void SetScore(string verifier, float score) => _scores[verifier] = score;

    /// <summary>Frees the tensors; the node keeps its place and accounting in the tree.</summary>
    internal void Release()
    {
        _state = null;
        _prediction = null;
        Prior = null;
    }

    /// <inheritdoc />
    public override string ToString() => $"node {Id} ({Path}) at step {StepIndex}/{Steps}{(Score is { } s ? $", score {s:0.###}" : string.Empty)}";

    private InvalidOperationException Released() => new($"node {Id} ({Path}) was pruned; its state is released.");
}
