namespace SearchOrchestrator.Search;

/// <summary>A snapshot of a running search.</summary>
/// <param name="Nfe">Denoiser evaluations spent so far.</param>
/// <param name="VerifierCalls">Verifier calls so far.</param>
/// <param name="Nodes">Nodes in the tree so far.</param>
/// <param name="DeepestStep">The furthest step any node has reached.</param>
/// <param name="BestScore">The best score verified so far, if any.</param>
/// <param name="Elapsed">Time since the search started.</param>
public sealed record SearchProgress(long Nfe, long VerifierCalls, int Nodes, int DeepestStep, double? BestScore, TimeSpan Elapsed)
{
    /// <summary>Prompts the text encoder encoded for this search so far (a pipeline's).</summary>
    public long EncoderCalls { get; init; }

    /// <summary>Latents the decoder decoded for this search so far (a pipeline's).</summary>
    public long DecoderCalls { get; init; }

    /// <summary>The part of <see cref="Nfe"/> spent on previews so far.</summary>
    public long PreviewNfe { get; init; }
}

/// <summary>What happened to a node.</summary>
public enum TreeEventKind
{
    /// <summary>The node reached <see cref="TreeEvent.Step"/>.</summary>
    Advanced,

    /// <summary>The node was created as a fork of its parent.</summary>
    Forked,

    /// <summary>The node was created by renoising its parent back to <see cref="TreeEvent.Step"/>.</summary>
    Renoised,

    /// <summary>The node's x0-prediction was scored.</summary>
    Verified,

    /// <summary>The node and its subtree were dropped.</summary>
    Pruned,

    /// <summary>The budget refused work (no node: id −1).</summary>
    BudgetLimited,
}

/// <summary>One change to a search tree, for streaming clients.</summary>
/// <param name="Kind">What happened.</param>
/// <param name="Node">The node's id (−1 for search-wide events).</param>
/// <param name="Path">The node's path.</param>
/// <param name="Step">Its step index after the event.</param>
/// <param name="Parent">Forks and renoises: the parent's id; otherwise −1.</param>
/// <param name="Score">Verifications: the combined score.</param>
public readonly record struct TreeEvent(TreeEventKind Kind, int Node, string Path, int Step, int Parent = -1, double? Score = null);

/// <summary>A search that has started: its progress while it runs, and its result.</summary>
public sealed class SearchRun
{
    private readonly TrajectoryTree _tree;

    internal SearchRun(TrajectoryTree tree, Task<SearchResult> completion)
    {
        _tree = tree;
        Completion = completion;
    }

    /// <summary>Completes with the result, or faults with the search's error.</summary>
    public Task<SearchResult> Completion { get; }

    /// <summary>A snapshot of the search so far.</summary>
    public SearchProgress Progress() => _tree.Progress();

    /// <summary>
    /// Takes up to <paramref name="max"/> of the tree events recorded since the last call (oldest first; the rest wait
    /// for the next call), and how many were dropped since the last call because the bounded queue was full.
    /// </summary>
    public (IReadOnlyList<TreeEvent> Events, int Dropped) TakeEvents(int max) => _tree.Ledger.TakeEvents(max);
}
