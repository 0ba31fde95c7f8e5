namespace SearchOrchestrator.Search;

/// <summary>A snapshot of a running search.</summary>
/// <param name="Nfe">Denoiser evaluations spent so far.</param>
/// <param name="VerifierCalls">Verifier calls so far.</param>
/// <param name="Nodes">Nodes in the tree so far.</param>
/// <param name="DeepestStep">The furthest step any node has reached.</param>
/// <param name="BestScore">The best score verified so far, if any.</param>
/// <param name="Elapsed">Time since the search started.</param>
public sealed record SearchProgress(long Nfe, long VerifierCalls, int Nodes, int DeepestStep, double? BestScore, TimeSpan Elapsed);

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
}
