using SearchOrchestrator.Search;

namespace SearchOrchestrator.Strategies;

/// <summary>
/// <c>dfs</c>: one trajectory goes deep; at each evaluation step, while its score is below the threshold and
/// backtracks remain, it renoises back <c>recur_depth</c> steps and tries again; the best state seen at that step is
/// kept and carried on (Zhang et al., 2025, "Inference-time Scaling of Diffusion Models through Classical Search").
/// </summary>
public sealed class DfsStrategy(IReadOnlyList<int> evaluateAt, double threshold, int recurDepth, int maxBacktracks) : ISearchStrategy
{
    /// <summary>The evaluation steps.</summary>
    public IReadOnlyList<int> EvaluateAt { get; } = evaluateAt;

    /// <summary>Scores below this trigger a backtrack.</summary>
    public double Threshold { get; } = threshold;

    /// <summary>How many steps a backtrack renoises back.</summary>
    public int RecurDepth { get; } = recurDepth;

    /// <summary>The most backtracks in the whole search.</summary>
    public int MaxBacktracks { get; } = maxBacktracks;

    /// <inheritdoc />
    public string Name => StrategyNames.Dfs;

    /// <inheritdoc />
    public bool NeedsVerifiers => true;

    /// <inheritdoc />
    public void Validate(int steps)
    {
        StrategyArguments.EvaluationSteps(Name, "evaluate_at", EvaluateAt, steps);
        StrategyArguments.Within(Name, "recur_depth", RecurDepth, 1, steps);
        StrategyArguments.AtLeast(Name, "max_backtracks", MaxBacktracks, 0);
        if (!double.IsFinite(Threshold))
        {
            throw new InvalidRequestException("strategy.threshold", $"{Name}: threshold must be a finite number, got {Threshold}.");
        }
    }

    /// <inheritdoc />
    public long PlannedNfe(int steps) => steps + ((long)MaxBacktracks * RecurDepth);

    /// <inheritdoc />
    public async Task<StrategyOutcome> RunAsync(TrajectoryTree tree, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(tree);
        var current = tree.CreateRoot();
        var backtracks = 0;
        foreach (var step in EvaluateAt)
        {
            await tree.AdvanceAsync(current, step, cancellationToken).ConfigureAwait(false);
            if (current.StepIndex != step || (await tree.VerifyAsync([current], cancellationToken).ConfigureAwait(false)).Count == 0)
            {
                break; // out of budget: carry on with what we have
            }

            var best = current;
            while (best.Score < Threshold && backtracks < MaxBacktracks)
            {
                backtracks++;
                var retry = tree.Renoise(best, Math.Max(0, step - RecurDepth));
                await tree.AdvanceAsync(retry, step, cancellationToken).ConfigureAwait(false);
                if (retry.StepIndex != step || (await tree.VerifyAsync([retry], cancellationToken).ConfigureAwait(false)).Count == 0)
                {
                    tree.Prune(retry);
                    break;
                }

                if (retry.Score > best.Score)
                {
                    best = retry;
                }
                else
                {
                    tree.Prune(retry);
                }
            }

            current = best;
        }

        await tree.AdvanceAsync(current, tree.Steps, cancellationToken).ConfigureAwait(false);
        if (current.IsComplete)
        {
            await tree.VerifyAsync([current], cancellationToken).ConfigureAwait(false);
        }

        return new StrategyOutcome([current]);
    }
}
