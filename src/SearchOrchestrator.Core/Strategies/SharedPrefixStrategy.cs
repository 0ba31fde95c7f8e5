using SearchOrchestrator.Search;

namespace SearchOrchestrator.Strategies;

/// <summary>
/// <c>shared_prefix</c>: one trajectory to step s, forked into k, each finished, the best kept. Costs
/// m = k − (k−1)·s/N runs instead of k. A fork schedule forks by a factor at each of several steps.
/// With no fork step given (<c>fork_at: auto</c>) it asks the engine's calibration for the latest step at which
/// siblings of this model and condition still differ.
/// </summary>
public sealed class SharedPrefixStrategy : ISearchStrategy
{
    /// <summary>Forks k ways at step <paramref name="forkAt"/>; null asks for calibration (<c>fork_at: auto</c>).</summary>
    public SharedPrefixStrategy(int k, int? forkAt)
    {
        K = k;
        ForkAt = forkAt;
        Schedule = forkAt is { } s ? [(s, k)] : [];
    }

    /// <summary>Forks by each factor at each step of <paramref name="schedule"/> (steps increasing).</summary>
    public SharedPrefixStrategy(IReadOnlyList<(int Step, int Factor)> schedule)
    {
        ArgumentNullException.ThrowIfNull(schedule);
        Schedule = schedule;
        K = schedule.Aggregate(1, (product, f) => product * f.Factor);
        ForkAt = schedule.Count > 0 ? schedule[0].Step : 0;
    }

    /// <summary>Leaves at the end (the product of the fork factors).</summary>
    public int K { get; }

    /// <summary>The first fork step; null when it is to be calibrated.</summary>
    public int? ForkAt { get; }

    /// <summary>The fork schedule: (step, factor) pairs.</summary>
    public IReadOnlyList<(int Step, int Factor)> Schedule { get; }

    /// <inheritdoc />
    public string Name => StrategyNames.SharedPrefix;

    /// <inheritdoc />
    public bool NeedsVerifiers => ForkAt is null;

    /// <inheritdoc />
    public void Validate(int steps)
    {
        StrategyArguments.AtLeast(Name, "k", K, 1);
        var previous = -1;
        foreach (var (step, factor) in Schedule)
        {
            StrategyArguments.Within(Name, "fork_at", step, 0, steps - 1);
            StrategyArguments.AtLeast(Name, "fork_factor", factor, 1);
            if (step <= previous)
            {
                throw new InvalidRequestException("strategy.fork_schedule", $"{Name}: fork steps must increase, got {CallerInput.QuoteList(Schedule.Select(f => f.Step))}.");
            }

            previous = step;
        }
    }

    /// <inheritdoc />
    public long PlannedNfe(int steps)
    {
        if (ForkAt is null)
        {
            return (long)K * steps; // the calibrated step is unknown up front: at worst, a fork at step 0
        }

        long nfe = 0, live = 1, at = 0;
        foreach (var (step, factor) in Schedule)
        {
            nfe += live * (step - at);
            live *= factor;
            at = step;
        }

        return nfe + (live * (steps - at));
    }

    /// <inheritdoc />
    public async Task<StrategyOutcome> RunAsync(TrajectoryTree tree, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(tree);
        var schedule = Schedule;
        if (ForkAt is null)
        {
            schedule = [(await tree.CalibratedForkStepAsync(cancellationToken).ConfigureAwait(false), K)];
        }

        List<Node> live = [tree.CreateRoot()];
        foreach (var (step, factor) in schedule)
        {
            await tree.AdvanceAsync(live, step, cancellationToken).ConfigureAwait(false);
            if (live.Exists(n => n.StepIndex != step))
            {
                break; // the budget stopped the prefix: return what there is
            }

            live = [.. live.SelectMany(n => tree.Fork(n, factor))];
        }

        await tree.AdvanceAsync(live, tree.Steps, cancellationToken).ConfigureAwait(false);
        var finished = live.Where(n => n.IsComplete).ToList();
        if (tree.Verifiers.Count > 0)
        {
            await tree.VerifyAsync(finished, cancellationToken).ConfigureAwait(false);
        }

        return new StrategyOutcome(live, schedule.Count > 0 ? schedule[0].Step : null);
    }
}
