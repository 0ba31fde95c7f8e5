using SearchOrchestrator.Search;

namespace SearchOrchestrator.Strategies;

/// <summary>
/// <c>best_of_n</c>: N independent trajectories from N roots, the finals verified, the best kept: random search
/// (Ma et al., 2025, "Inference-Time Scaling for Diffusion Models beyond Scaling Denoising Steps"). Without verifiers
/// it simply returns the N samples.
/// </summary>
public sealed class BestOfNStrategy(int n) : ISearchStrategy
{
    /// <summary>Number of independent trajectories.</summary>
    public int N { get; } = n;

    /// <inheritdoc />
    public string Name => StrategyNames.BestOfN;

    /// <inheritdoc />
    public bool NeedsVerifiers => false;

    /// <inheritdoc />
    public void Validate(int steps) => StrategyArguments.AtLeast(Name, "n", N, 1);

    /// <inheritdoc />
    public long PlannedNfe(int steps) => (long)N * steps;

    /// <inheritdoc />
    public async Task<StrategyOutcome> RunAsync(TrajectoryTree tree, CancellationToken cancellationToken = default)
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
