namespace SearchOrchestrator.Search;

/// <summary>
/// One trajectory state of a search as a strategy sees it: where it is (its step index i, 0 = pure noise, N = clean),
/// where it came from, and its latest verifier scores. Nodes are made and changed only through their
/// <see cref="ISearchTree"/>; their tensors stay with the engine, wherever the node's state lives.
/// </summary>
public interface ISearchNode
{
    /// <summary>The node's number within its search, in creation order (a deterministic tie-break).</summary>
    int Id { get; }

    /// <summary>The node it was forked or renoised from; null for a root.</summary>
    ISearchNode? Parent { get; }

    /// <summary>The path from the root: the root's index, then the child index at each level (<c>0/2/1</c>); the node's noise is keyed by it.</summary>
    string Path { get; }

    /// <summary>The step index i (0 = pure noise, N = clean).</summary>
    int StepIndex { get; }

    /// <summary>True at step index N: the state is the finished sample.</summary>
    bool IsComplete { get; }

    /// <summary>True once pruned; the node cannot be used again.</summary>
    bool IsPruned { get; }

    /// <summary>The combined score of the latest verification (higher is better), or null if never verified.</summary>
    double? Score { get; }

    /// <summary>The step index at which <see cref="Score"/> was measured.</summary>
    int? ScoredAtStep { get; }

    /// <summary>The latest score of each verifier, by name.</summary>
    IReadOnlyDictionary<string, float> Scores { get; }
}
