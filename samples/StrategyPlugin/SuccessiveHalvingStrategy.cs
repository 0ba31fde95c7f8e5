using System.Globalization;
using SearchOrchestrator;
using SearchOrchestrator.Search;

namespace StrategyPlugin;

/// <summary>
/// <c>successive_halving</c>: n independent trajectories; at each evaluation step every live one is scored and the
/// worse half is pruned, so compute goes to the trajectories that look best early (early pruning on intermediate
/// rewards, as in TTSnap, 2025). Nothing is forked, so the cost is exact under any η.
/// </summary>
/// <param name="N">Trajectories at the start.</param>
/// <param name="EvaluateAt">The steps at which the worse half is pruned.</param>
public sealed record SuccessiveHalvingStrategy(int N, IReadOnlyList<int> EvaluateAt) : ISearchStrategy<SuccessiveHalvingStrategy>
{
    public static StrategyDefinition Definition { get; } = new(
        "successive_halving",
        "n trajectories; the worse half pruned at each evaluation step.",
        [
            new("n", "8", "trajectories at the start"),
            new("evaluate_at", "N/4,N/2,3N/4", "the steps at which the worse half is pruned"),
        ],
        (p, steps) => new SuccessiveHalvingStrategy(p.Int("n", 8), p.Steps("evaluate_at", [.. new[] { steps / 4, steps / 2, 3 * steps / 4 }.Where(s => s > 0).Distinct()])));

    public string Name => Definition.Name;

    public bool NeedsVerifiers => true;

    public void Validate(int steps)
    {
        if (N < 1)
        {
            throw new InvalidRequestException("strategy.n", $"{Name}: n must be at least 1, got {N}.");
        }

        for (var i = 0; i < EvaluateAt.Count; i++)
        {
            if (EvaluateAt[i] < 1 || EvaluateAt[i] >= steps || (i > 0 && EvaluateAt[i] <= EvaluateAt[i - 1]))
            {
                throw new InvalidRequestException("strategy.evaluate_at", $"{Name}: evaluate_at must be strictly increasing steps between 1 and {steps - 1}, got [{string.Join(", ", EvaluateAt)}].");
            }
        }
    }

    /// <summary>Exact: the live count halves (rounding up) at each evaluation step; a pruned trajectory's path ends there.</summary>
    public CostPlan Plan(PlanContext context)
    {
        long nfe = 0, live = N, at = 0;
        foreach (var step in EvaluateAt)
        {
            nfe += live * (step - at);
            live = (live + 1) / 2;
            at = step;
        }

        nfe += live * (context.Steps - at);
        // Nothing is shared, so running every trajectory on its own costs the same.
        var exact = NfeRange.Exactly(nfe);
        return new(exact, exact, string.Create(CultureInfo.InvariantCulture, $"{N} trajectories halved at steps {string.Join(", ", EvaluateAt)}."));
    }

    public async Task<StrategyOutcome> RunAsync(ISearchTree tree, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(tree);
        var live = Enumerable.Range(0, N).Select(_ => tree.CreateRoot()).ToList();
        foreach (var step in EvaluateAt)
        {
            await tree.AdvanceAsync(live, step, cancellationToken).ConfigureAwait(false);
            var scored = await tree.VerifyAsync([.. live.Where(n => n.StepIndex == step)], cancellationToken).ConfigureAwait(false);
            if (scored.Count < live.Count)
            {
                break; // out of budget: finish what there is
            }

            var keep = scored.OrderByDescending(n => n.Score).ThenBy(n => n.Id).Take((live.Count + 1) / 2).ToHashSet();
            foreach (var dropped in live.Where(n => !keep.Contains(n)))
            {
                tree.Prune(dropped);
            }

            live = [.. live.Where(keep.Contains)];
        }

        await tree.AdvanceAsync(live, tree.Steps, cancellationToken).ConfigureAwait(false);
        await tree.VerifyAsync([.. live.Where(n => n.IsComplete)], cancellationToken).ConfigureAwait(false);
        return new StrategyOutcome(live);
    }
}
