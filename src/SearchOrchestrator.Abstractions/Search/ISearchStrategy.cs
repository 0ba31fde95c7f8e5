namespace SearchOrchestrator.Search;

/// <summary>What a strategy hands back: nodes of its tree it proposes (the engine ranks them) and the fork step it used, if any.</summary>
public sealed record StrategyOutcome(IReadOnlyList<ISearchNode> Candidates, int? ForkStep = null);

/// <summary>
/// A configured search policy: decides which nodes to advance, fork, verify, prune or renoise. Written as plain async
/// code against the <see cref="ISearchTree"/>; it knows nothing of batching or placement. Its parameters are its
/// data; <see cref="Plan"/> is the one cost model that admission caps, <c>Estimate</c> and the budget check agree on.
/// </summary>
public interface ISearchStrategy
{
    /// <summary>The name it is registered and chosen by.</summary>
    string Name { get; }

    /// <summary>True when the strategy cannot run without at least one verifier.</summary>
    bool NeedsVerifiers { get; }

    /// <summary>
    /// True when the strategy scores nodes' states (<see cref="ISearchTree.VerifyStatesAsync"/>): a masked model's
    /// committed tokens. The engine refuses it for other processes, whose states are noise.
    /// </summary>
    bool JudgesStates => false;

    /// <summary>Checks the parameters against the request's step count; throws <see cref="InvalidRequestException"/> naming <c>strategy.&lt;parameter&gt;</c>.</summary>
    void Validate(int steps);

    /// <summary>
    /// What the search will spend, worked out before it runs: NFE exactly, or bounds when it depends on scores. Called
    /// only after <see cref="Validate"/> passed. A search that is not stopped by its budget spends within
    /// <see cref="CostPlan.Nfe"/>.
    /// </summary>
    CostPlan Plan(PlanContext context);

    /// <summary>Runs the search on <paramref name="tree"/>.</summary>
    Task<StrategyOutcome> RunAsync(ISearchTree tree, CancellationToken cancellationToken = default);
}

/// <summary>
/// A strategy that can be registered by name (<c>AddStrategy&lt;T&gt;()</c>, or found in a plug-in assembly): its
/// <see cref="Definition"/> says how it is built from named parameters.
/// </summary>
/// <typeparam name="TSelf">The strategy type itself.</typeparam>
public interface ISearchStrategy<TSelf> : ISearchStrategy
    where TSelf : class, ISearchStrategy<TSelf>
{
    /// <summary>Its name, its parameters with their defaults, and how it is built from them.</summary>
    static abstract StrategyDefinition Definition { get; }
}
