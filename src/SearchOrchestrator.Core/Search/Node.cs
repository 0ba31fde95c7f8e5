using SearchOrchestrator.Processes;
using SearchOrchestrator.Randomness;
using SearchOrchestrator.Workers;

namespace SearchOrchestrator.Search;

/// <summary>
/// One trajectory state in a search tree: the tensor at step index i, its RNG key (a pure function of the request
/// seed and this node's path), its parent and children, and its latest verifier scores. A node moves along its
/// trajectory as it is advanced; fork and renoise create children. Strategies see it as an <see cref="ISearchNode"/>.
/// </summary>
internal sealed class Node : ISearchNode
{
    private readonly List<Node> _children = [];
    private readonly Dictionary<string, float> _scores = new(StringComparer.Ordinal);
    private float[]? _state;
    private float[]? _prediction;
    private int _localStep = -1;
    private float[]? _pixels;
    private int _pixelsStep = -1;
    private bool _released;

    /// <summary>A node with no state yet: its executor makes it (<see cref="SetLocal"/>, or on a backend).</summary>
    internal Node(int id, Node? parent, string path, RngKey key, ChildStart origin, int stepIndex, long pathNfe, int steps)
    {
        Id = id;
        Parent = parent;
        Path = path;
        Key = key;
        Origin = origin;
        BranchStep = parent?.StepIndex ?? 0;
        StartStep = stepIndex;
        StepIndex = stepIndex;
        PathNfe = pathNfe;
        InitialPathNfe = pathNfe;
        Steps = steps;
        parent?._children.Add(this);
    }

    /// <summary>The node's number within its search, in creation order.</summary>
    public int Id { get; }

    /// <summary>The node it was forked or renoised from; null for a root.</summary>
    public Node? Parent { get; }

    ISearchNode? ISearchNode.Parent => Parent;

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
    public bool IsPruned => _released;

    /// <summary>The state x_i.</summary>
    /// <exception cref="InvalidOperationException">The node was pruned, or its state is resident on a backend (see <see cref="TrajectoryTree.MaterializeAsync"/>).</exception>
    public ReadOnlyMemory<float> State => LocalState();

    /// <summary>
    /// The x0-prediction verifiers score: the finished sample once complete, otherwise the denoiser's estimate from
    /// its latest step (made at step i − 1); null before the first step.
    /// </summary>
    public ReadOnlyMemory<float>? Prediction
    {
        get
        {
            var source = IsComplete ? LocalState() : (IsLocal ? _prediction : throw (_released ? Released() : Resident()));
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

    /// <summary>True when the node has an x0-prediction (it has stepped, or inherited one), wherever it is held.</summary>
    public bool HasPrediction { get; internal set; }

    /// <summary>How this node started from its parent (<see cref="ChildStart.Prior"/> for a root); replay repeats it.</summary>
    internal ChildStart Origin { get; }

    /// <summary>The parent's step index when this node branched off (0 for roots).</summary>
    internal int BranchStep { get; }

    /// <summary>The step index this node started at.</summary>
    internal int StartStep { get; }

    /// <summary>True when this process holds the node's current state.</summary>
    internal bool IsLocal => !_released && _state is not null && _localStep == StepIndex;

    /// <summary>
    /// Where the node's state is kept on a backend that keeps node states, when it is; null otherwise. Its copy there is
    /// current unless the node has since moved here (<see cref="IsLocal"/> and not advanced there).
    /// </summary>
    internal Residency? Residency { get; set; }

    /// <summary>True for a root whose state is its key's prior noise (a worker can draw it without it being sent).</summary>
    internal bool IsKeyPrior { get; init; }

    internal float[] MutableState => IsLocal ? _state! : throw (_released ? Released() : Resident());

    internal float[] PredictionBuffer => _prediction ??= new float[MutableState.Length];

    internal float[]? PredictionOrNull => _prediction;

    /// <summary>The copy this process holds (a checkpoint at an earlier step when the node moved elsewhere since), if any.</summary>
    internal (float[] State, float[]? Prediction, int Step)? Checkpoint => !_released && _state is not null ? (_state, _prediction, _localStep) : null;

    /// <summary>Makes <paramref name="state"/> the local copy at the node's current step.</summary>
    internal void SetLocal(float[] state, float[]? prediction)
    {
        _state = state;
        _prediction = prediction;
        _localStep = StepIndex;
    }

    /// <summary>
    /// Moves the node to <paramref name="step"/> and counts the steps on its path. <paramref name="here"/>: the local
    /// copy moved with it (stepped in place); otherwise the node moved on a backend and the local copy, if any, stays
    /// behind as a checkpoint.
    /// </summary>
    internal void MoveTo(int step, bool here)
    {
        var advanced = step - StepIndex;
        StepIndex = step;
        PathNfe += advanced;
        HasPrediction |= advanced > 0;
        if (here)
        {
            _localStep = step;
        }
    }

    /// <summary>
    /// The starting noise of a root whose key cannot give it back (a zero-order neighbour), kept so neighbours of it and
    /// replays can start from it after the root has moved; null otherwise (the key's prior is drawn again).
    /// </summary>
    internal float[]? Prior { get; set; }

    /// <summary>A pipeline's decoded image of the x0-prediction at the current step, if it was decoded at this step.</summary>
    internal float[]? Pixels => _pixelsStep == StepIndex ? _pixels : null;

    /// <summary>Keeps the decoded image of the x0-prediction at the current step (a node is decoded once per step).</summary>
    internal void SetPixels(float[] pixels)
    {
        _pixels = pixels;
        _pixelsStep = StepIndex;
    }

    internal void SetScore(string verifier, float score) => _scores[verifier] = score;

    /// <summary>This node and every descendant.</summary>
    internal IEnumerable<Node> Subtree()
    {
        var stack = new Stack<Node>([this]);
        while (stack.TryPop(out var current))
        {
            yield return current;
            foreach (var child in current.Children)
            {
                stack.Push(child);
            }
        }
    }

    /// <summary>Frees the tensors; the node keeps its place and accounting in the tree.</summary>
    internal void Release()
    {
        _released = true;
        _state = null;
        _prediction = null;
        _pixels = null;
        Prior = null;
    }

    /// <inheritdoc />
    public override string ToString() => $"node {Id} ({Path}) at step {StepIndex}/{Steps}{(Score is { } s ? $", score {s:0.###}" : string.Empty)}";

    private float[] LocalState() => IsLocal ? _state! : throw (_released ? Released() : Resident());

    private InvalidOperationException Released() => new($"node {Id} ({Path}) was pruned; its state is released.");

    private InvalidOperationException Resident() => new($"node {Id} ({Path}) is resident on worker {Residency?.Backend.Name}; call TrajectoryTree.MaterializeAsync to bring its state here.");
}

/// <summary>
/// Where a resident node's state is kept: the backend and the handle it is kept under, the last remote operation on it
/// (the next one waits for it), and the fetch of it in flight, which every caller that needs the state here shares.
/// </summary>
internal sealed class Residency(IStepBackend backend, IResidentStates states, ulong handle)
{
    /// <summary>The backend that keeps the state.</summary>
    public IStepBackend Backend { get; } = backend;

    /// <summary>Its resident-state operations.</summary>
    public IResidentStates States { get; } = states;

    /// <summary>The handle the state is kept under.</summary>
    public ulong Handle { get; } = handle;

    /// <summary>The last remote operation on the state; the next one waits for it.</summary>
    public Task Ready { get; set; } = Task.CompletedTask;

    /// <summary>Bringing the state here, while it runs: at most one per node, shared.</summary>
    public Task? Fetch { get; set; }
}
