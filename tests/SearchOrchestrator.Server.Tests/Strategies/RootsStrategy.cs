using SearchOrchestrator.Search;

namespace SearchOrchestrator.Server.Tests.Strategies;

/// <summary>
/// A strategy that exists only in this test assembly: <c>test_roots</c> runs <c>roots</c> independent trajectories and
/// verifies them. Registered with <c>AddStrategy&lt;T&gt;()</c>, it is called over gRPC by name.
/// </summary>
public sealed record RootsStrategy(int Roots) : ISearchStrategy<RootsStrategy>
{
    public const string StrategyName = "test_roots";

    public static StrategyDefinition Definition { get; } = new(
        StrategyName,
        "independent trajectories, each verified (a test strategy).",
        [new("roots", "2", "trajectories")],
        (p, _) => new RootsStrategy(p.Int("roots", 2)));

    public string Name => StrategyName;

    public bool NeedsVerifiers => true;

    public void Validate(int steps)
    {
        if (Roots < 1)
        {
            throw new InvalidRequestException("strategy.roots", $"{Name}: roots must be at least 1, got {Roots}.");
        }
    }

    public CostPlan Plan(PlanContext context) => new(NfeRange.Exactly((long)Roots * context.Steps), NfeRange.Exactly((long)Roots * context.Steps), $"{Roots} trajectories.");

    public async Task<StrategyOutcome> RunAsync(ISearchTree tree, CancellationToken cancellationToken = default)
    {
        var roots = Enumerable.Range(0, Roots).Select(_ => tree.CreateRoot()).ToList();
        await tree.AdvanceAsync(roots, tree.Steps, cancellationToken);
        await tree.VerifyAsync(roots, cancellationToken);
        return new StrategyOutcome(roots);
    }
}
