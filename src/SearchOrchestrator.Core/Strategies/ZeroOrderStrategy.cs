using SearchOrchestrator.Search;

namespace SearchOrchestrator.Strategies;

/// <summary>
/// <c>zero_order</c>: a pivot noise is denoised and scored; K neighbours of it at similarity λ
/// (λ·pivot + √(1−λ²)·fresh noise) are denoised and scored; the best becomes the new pivot; repeat
/// (zero-order search, Ma et al., 2025, "Inference-Time Scaling for Diffusion Models beyond Scaling Denoising Steps").
/// </summary>
/// <param name="Neighbours">K, neighbours per iteration.</param>
/// <param name="Similarity">λ, the neighbours' similarity to the pivot noise.</param>
/// <param name="Iterations">Iterations after the first pivot.</param>
public sealed record ZeroOrderStrategy(int Neighbours, double Similarity, int Iterations) : ISearchStrategy<ZeroOrderStrategy>
{
    /// <inheritdoc />
    public static StrategyDefinition Definition { get; } = new(
        StrategyNames.ZeroOrder,
        "a pivot noise and K neighbours of it, denoised and scored; the best becomes the pivot (zero-order search). Defaults tuned with count-verifier-t: 4x one trajectory, level with best_of_n n=4 on the held-out counting seeds (144 searches: 76.4% against 77.8%; BENCHMARKS.md 3b).",
        [
            new("neighbours", "3", "K, neighbours per iteration"),
            new("similarity", "0.7", "λ, the neighbours' similarity to the pivot noise, 0 to 1"),
            new("iterations", "1", "iterations after the first pivot"),
        ],
        (p, _) => new ZeroOrderStrategy(p.Int("neighbours", 3), p.Double("similarity", 0.7), p.Int("iterations", 1)));

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

    /// <summary>Exact: the pivot and every neighbour are independent roots run the whole way.</summary>
    public CostPlan Plan(PlanContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var nfe = NfeRange.Exactly(context.Steps * (1 + ((long)Neighbours * Iterations)));
        return new(nfe, nfe, $"a pivot and {Iterations} iteration(s) of {Neighbours} neighbours, each a whole trajectory.");
    }

    /// <inheritdoc />
    public async Task<StrategyOutcome> RunAsync(ISearchTree tree, CancellationToken cancellationToken = default)
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
