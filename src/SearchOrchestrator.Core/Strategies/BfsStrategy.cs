using SearchOrchestrator.Search;

namespace SearchOrchestrator.Strategies;

/// <summary>How <see cref="BfsStrategy"/> chooses survivors at an evaluation step.</summary>
public enum BfsMode
{
    /// <summary>Each particle gets round(softmax(score/τ)·K) continuations.</summary>
    Resample,

    /// <summary>The top w particles survive and share the K continuations equally.</summary>
    Prune,
}

/// <summary>
/// <c>bfs</c>: K particles advanced together and evaluated at chosen steps; there each particle gets
/// round(softmax(score/τ)·K) continuations (resampling) or only the top w survive (pruning); the best final wins
/// (Zhang et al., 2025, "Inference-time Scaling of Diffusion Models through Classical Search"). A particle with one
/// continuation carries on itself; one with several is forked that many ways.
/// </summary>
public sealed class BfsStrategy(int particles, IReadOnlyList<int> evaluateAt, BfsMode mode = BfsMode.Resample, double temperature = 1.0, int width = 1) : ISearchStrategy
{
    /// <summary>K, the particles kept at each step.</summary>
    public int Particles { get; } = particles;

    /// <summary>The evaluation steps.</summary>
    public IReadOnlyList<int> EvaluateAt { get; } = evaluateAt;

    /// <summary>Resampling or pruning.</summary>
    public BfsMode Mode { get; } = mode;

    /// <summary>τ of the resampling softmax.</summary>
    public double Temperature { get; } = temperature;

    /// <summary>w, the survivors when pruning.</summary>
    public int Width { get; } = width;

    /// <inheritdoc />
    public string Name => StrategyNames.Bfs;

    /// <inheritdoc />
    public bool NeedsVerifiers => true;

    /// <inheritdoc />
    public void Validate(int steps)
    {
        StrategyArguments.AtLeast(Name, "particles", Particles, 1);
        StrategyArguments.EvaluationSteps(Name, "evaluate_at", EvaluateAt, steps);
        if (Mode == BfsMode.Resample && !(Temperature > 0 && double.IsFinite(Temperature)))
        {
            throw new InvalidRequestException("strategy.temperature", $"{Name}: temperature must be a positive number, got {Temperature}.");
        }

        if (Mode == BfsMode.Prune)
        {
            StrategyArguments.Within(Name, "width", Width, 1, Particles);
        }
    }

    /// <inheritdoc />
    public long PlannedNfe(int steps) => (long)Particles * steps;

    /// <inheritdoc />
    public async Task<StrategyOutcome> RunAsync(TrajectoryTree tree, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(tree);
        var live = Enumerable.Range(0, Particles).Select(_ => tree.CreateRoot()).ToList();
        foreach (var step in EvaluateAt)
        {
            await tree.AdvanceAsync(live, step, cancellationToken).ConfigureAwait(false);
            live = [.. live.Where(n => n.StepIndex == step)];
            var scored = await tree.VerifyAsync(live, cancellationToken).ConfigureAwait(false);
            if (scored.Count == 0)
            {
                break;
            }

            var counts = Mode == BfsMode.Resample ? ResampleCounts(scored) : PruneCounts(scored);
            var next = new List<Node>();
            for (var i = 0; i < scored.Count; i++)
            {
                if (counts[i] == 0)
                {
                    tree.Prune(scored[i]);
                    continue;
                }

                // One continuation is the particle itself; several are forks of it, and it stops where they branch.
                next.AddRange(counts[i] == 1 ? [scored[i]] : tree.Fork(scored[i], counts[i]));
            }

            live = next;
        }

        await tree.AdvanceAsync(live, tree.Steps, cancellationToken).ConfigureAwait(false);
        var finished = live.Where(n => n.IsComplete).ToList();
        await tree.VerifyAsync(finished, cancellationToken).ConfigureAwait(false);
        return new StrategyOutcome(live);
    }

    /// <summary>round(softmax(score/τ)·K), topped up or trimmed by rank so exactly K continue.</summary>
    private int[] ResampleCounts(IReadOnlyList<Node> nodes)
    {
        var scores = nodes.Select(n => n.Score!.Value / Temperature).ToArray();
        var max = scores.Max();
        var weights = scores.Select(s => Math.Exp(s - max)).ToArray();
        var total = weights.Sum();
        var counts = weights.Select(w => (int)Math.Round(w / total * Particles)).ToArray();
        var byRank = Enumerable.Range(0, nodes.Count).OrderByDescending(i => weights[i]).ThenBy(i => nodes[i].Id).ToArray();
        for (var r = 0; counts.Sum() < Particles; r = (r + 1) % byRank.Length)
        {
            counts[byRank[r]]++;
        }

        for (var r = byRank.Length - 1; counts.Sum() > Particles; r = r == 0 ? byRank.Length - 1 : r - 1)
        {
            if (counts[byRank[r]] > 0)
            {
                counts[byRank[r]]--;
            }
        }

        return counts;
    }

    /// <summary>The top w share K continuations as evenly as possible, the better ones taking any remainder.</summary>
    private int[] PruneCounts(IReadOnlyList<Node> nodes)
    {
        var counts = new int[nodes.Count];
        var top = nodes.Select((n, i) => (n, i)).OrderByDescending(p => p.n.Score).ThenBy(p => p.n.Id).Take(Width).Select(p => p.i).ToArray();
        for (var r = 0; r < top.Length; r++)
        {
            counts[top[r]] = (Particles / top.Length) + (r < Particles % top.Length ? 1 : 0);
        }

        return counts;
    }
}
