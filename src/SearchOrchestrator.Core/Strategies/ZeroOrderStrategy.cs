using SearchOrchestrator.Search;

namespace SearchOrchestrator.Strategies;

/// <summary>
/// <c>zero_order</c>: a pivot noise is denoised and scored; K neighbours of it at similarity λ
/// (λ·pivot + √(1−λ²)·fresh noise) are denoised and scored; the best becomes the new pivot; repeat
/// (zero-order search, Ma et al., 2025, "Inference-Time Scaling for Diffusion Models beyond Scaling Denoising Steps").
/// </summary>
public sealed class ZeroOrderStrategy(int neighbours, double similarity, int iterations) : ISearchStrategy
{
    /// <summary>K, neighbours per iteration.</summary>
    public int Neighbours { get; } = neighbours;

    /// <summary>λ, the neighbours' similarity to the pivot noise.</summary>
    public double Similarity { get; } = similarity;

    /// <summary>Iterations after the first pivot.</summary>
    public int Iterations { get; } = iterations;

    /// <inheritdoc />
    public string Name => StrategyNames.ZeroOrder;

    /// <inheritdoc />
    public bool NeedsVerifiers => true;

    /// <inheritdoc />
    public void Validate(int steps)
    {
        StrategyArguments.AtLeast(Name, "neighbours", Neighbours, 1);
        StrategyArguments.Within(Name, "similarity", Similarity, 0, 1);
        StrategyArguments.AtLeast(Name, "iterations", Iterations, 1);
    }

    /// <inheritdoc />
    public long PlannedNfe(int steps) => (long)steps * (1 + ((long)Neighbours * Iterations));

    /// <inheritdoc />
    public async Task<StrategyOutcome> RunAsync(TrajectoryTree tree, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(tree);
        var pivot = tree.CreateRoot();
        await tree.AdvanceAsync(pivot, tree.Steps, cancellationToken).ConfigureAwait(false);
        if (!pivot.IsComplete || (await tree.VerifyAsync([pivot], cancellationToken).ConfigureAwait(false)).Count == 0)
        {
            return new StrategyOutcome([pivot]);
        }

        for (var iteration = 0; iteration < Iterations; iteration++)
        {
            var neighbours = Enumerable.Range(0, Neighbours).Select(_ => tree.CreateRoot(pivot, Similarity)).ToList();
            await tree.AdvanceAsync(neighbours, tree.Steps, cancellationToken).ConfigureAwait(false);
            var scored = await tree.VerifyAsync([.. neighbours.Where(n => n.IsComplete)], cancellationToken).ConfigureAwait(false);
            var best = scored.BestFirst().FirstOrDefault();
            if (best is not null && best.Score > pivot.Score)
            {
                tree.Prune(pivot);
                pivot = best;
            }

            foreach (var neighbour in neighbours.Where(n => n != pivot))
            {
                tree.Prune(neighbour);
            }

            if (scored.Count < neighbours.Count)
            {
                break; // the budget ran out mid-iteration
            }
        }

        return new StrategyOutcome([pivot]);
    }
}
