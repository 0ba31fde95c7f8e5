using SearchOrchestrator.Search;

namespace SearchOrchestrator.Strategies;

/// <summary>
/// <c>best_of_n</c>: N independent trajectories from N roots, the finals verified, the best kept: random search
/// (Ma et al., 2025, "Inference-Time Scaling for Diffusion Models beyond Scaling Denoising Steps"). Without verifiers
/// it simply returns the N samples.
/// </summary>
/// <param name="N">Number of independent trajectories.</param>
public sealed record BestOfNStrategy(int N) : ISearchStrategy<BestOfNStrategy>
{
    /// <inheritdoc />
    public static StrategyDefinition Definition { get; } = new(
        StrategyNames.BestOfN,
        "N independent trajectories, the best final kept (random search).",
        [new("n", "4", "independent trajectories")],
        (p, _) => new BestOfNStrategy(p.Int("n", 4)));

    /// <inheritdoc />
    public string Name => StrategyNames.BestOfN;

    /// <inheritdoc />
    public bool NeedsVerifiers => false;

    /// <inheritdoc />
    public void Validate(int steps) => StrategyArguments.AtLeast(Name, "n", N, 1);

    /// <inheritdoc />
    public CostPlan Plan(PlanContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var nfe = NfeRange.Exactly((long)N * context.Steps);
        return new(nfe, nfe, $"{N} independent trajectories of {context.Steps} steps.");
    }

    /// <inheritdoc />
    public async Task<StrategyOutcome> RunAsync(ISearchTree tree, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(tree);
        var roots = Enumerable.Range(0, N).Select(_ => tree.CreateRoot()).ToList();
        await tree.AdvanceAsync(roots, tree.Steps, cancellationToken).ConfigureAwait(false);
        var finished = roots.Where(r => r.IsComplete).ToList();
        if (tree.Verifiers.Count > 0)
        {
            await tree.VerifyAsync(finished, cancellationToken).ConfigureAwait(false);
        }

        return new StrategyOutcome(roots);
    }
}
