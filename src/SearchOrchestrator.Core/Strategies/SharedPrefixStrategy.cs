using System.Globalization;
using SearchOrchestrator.Search;

namespace SearchOrchestrator.Strategies;

/// <summary>
/// <c>shared_prefix</c>: one trajectory to step s, forked into k, each finished, the best kept. Costs
/// m = k − (k−1)·s/N runs instead of k. A fork schedule forks by a factor at each of several steps.
/// With no fork step given (<c>fork_at: auto</c>) it asks the engine's calibration for the latest step s at which
/// siblings of this model and condition still differ, then forks <see cref="AutoShift"/>·N later on the same cost line
/// (<see cref="AutoFork"/>). With <c>renoise</c> = r each fork renoises its children back r steps with their own noise,
/// also under η &gt; 0, so they start apart instead of sharing the fork's state (each pays the r steps again).
/// </summary>
public sealed record SharedPrefixStrategy : ISearchStrategy<SharedPrefixStrategy>
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

    /// <summary>
    /// How much later than the calibrated step <c>fork_at: auto</c> forks, as a share of N. Chosen on the counting bench's
    /// tuning seeds (k = 4, N = 50, on the cost line of a plain fork at step 25: forking 8 steps later, renoised 6 back,
    /// beat forking 0, 4, 12, 16, 20 and 23 steps later) and measured held out (BENCHMARKS.md 3b).
    /// </summary>
    public const double AutoShift = 1.0 / 6;

    /// <inheritdoc />
    public static StrategyDefinition Definition { get; } = new(
        StrategyNames.SharedPrefix,
        "one trajectory to a fork step, forked k ways, each finished (m = k − (k−1)·s/N). Under η > 0 siblings stay close unless renoised apart: on the counting bench, held out, fork_at: auto (forked N/6 past its calibrated step, renoised) kept 99% of best-of-4's gain at 2.5× (a plain fork at 25: 72%), and k=8 fork_at=44 renoise=13 beat best-of-8 at 3.92× (95.8% against 91.0%, 144 searches; BENCHMARKS.md 3b).",
        [
            new("k", "4", "branches"),
            new("fork_at", "auto|<step> (default auto)", "the fork step, or auto: the latest step s at which siblings still differ, calibrated per model and condition, then (without renoise) a fork N/6 later whose children renoise back (k−1)/k of that, at the cost of a plain fork at s"),
            new("fork_schedule", "<step>:<factor>,… (instead of k and fork_at)", "forks by each factor at each step"),
            new("renoise", "0 (the request's fork_renoise_steps under η = 0)", "steps each fork renoises its children back with their own noise, under any η: siblings start apart (each pays the steps again)"),
        ],
        (p, _) => Create(p));

    /// <summary>Leaves at the end (the product of the fork factors).</summary>
    public int K { get; }

    /// <summary>The first fork step; null when it is to be calibrated.</summary>
    public int? ForkAt { get; }

    /// <summary>The fork schedule: (step, factor) pairs.</summary>
    public IReadOnlyList<(int Step, int Factor)> Schedule { get; }

    /// <summary>Steps each fork renoises its children back under any sampler; 0: a plain fork (renoised only under η = 0, by the request's <c>fork_renoise_steps</c>).</summary>
    public int RenoiseSteps { get; init; }

    /// <inheritdoc />
    public string Name => StrategyNames.SharedPrefix;

    /// <inheritdoc />
    public bool NeedsVerifiers => ForkAt is null;

    /// <inheritdoc />
    public void Validate(int steps)
    {
        StrategyArguments.AtLeast(Name, "k", K, 1);
        StrategyArguments.AtLeast(Name, "renoise", RenoiseSteps, 0);
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

    /// <summary>
    /// Live trajectories step from fork to fork; each fork renoised (under η = 0, or by <c>renoise</c>) adds its renoised steps per child. With
    /// <c>fork_at: auto</c> the calibrated step is unknown up front: anywhere from 0 to N − 1.
    /// </summary>
    public CostPlan Plan(PlanContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var n = context.Steps;
        if (ForkAt is null)
        {
            var latest = n - 1;
            var min = latest + ((long)K * (1 + Back(context, latest)));
            // A fork at step s costs s + k·(N − s + back(s)): most at s = back (= 0 under η > 0 without renoise).
            var max = ((long)K * n) + Back(context, latest);
            // fork_at: auto's later, renoised fork (AutoFork) costs at most the plain fork at the calibrated step, but its
            // children's paths are longer by up to the renoise of the largest shift (after the earliest calibrated step, 1).
            var longest = Math.Max(Back(context, latest), RenoiseSteps > 0 ? 0 : AutoFork(1, n, K).Renoise);
            return new(new NfeRange(Math.Min(min, max), Math.Max(min, max)), new NfeRange((long)K * n, (long)K * (n + longest)),
                $"fork_at: auto forks {K} ways at a calibrated step between 0 and {latest}{(RenoiseSteps > 0 ? string.Empty : ", or later renoised at no more cost")}; a first request per model and condition also pays the calibration.")
            {
                CalibratesForkStep = true,
            };
        }

        long nfe = 0, live = 1, at = 0, path = 0;
        foreach (var (step, factor) in Schedule)
        {
            nfe += live * (step - at);
            path += step - at;
            var back = Back(context, step);
            live *= factor;
            nfe += live * back;
            path += back;
            at = step;
        }

        nfe += live * (n - at);
        path += n - at;
        var renoise = Schedule.Count == 1 ? Back(context, Schedule[0].Step) : 0;
        var basis = Schedule.Count == 1
            ? FormattableString.Invariant($"one trajectory to step {ForkAt}, forked {K} ways: m = k − (k−1)·s/N = {K} − {K - 1}·{ForkAt}/{n}{(renoise > 0 ? $", plus {renoise} renoised step(s) per child{(RenoiseSteps > 0 ? string.Empty : " under η = 0")}" : string.Empty)}.")
            : $"a fork schedule of {Schedule.Count} forks to {K} leaves.";
        return new(NfeRange.Exactly(nfe), NfeRange.Exactly(live * path), basis);
    }

    /// <inheritdoc />
    public async Task<StrategyOutcome> RunAsync(ISearchTree tree, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(tree);
        var schedule = Schedule;
        var renoise = RenoiseSteps;
        if (ForkAt is null)
        {
            var calibrated = await tree.CalibratedForkStepAsync(cancellationToken).ConfigureAwait(false);
            var (step, back) = RenoiseSteps > 0 ? (calibrated, RenoiseSteps) : AutoFork(calibrated, tree.Steps, K);
            schedule = [(step, K)];
            renoise = back;
        }

        List<ISearchNode> live = [tree.CreateRoot()];
        foreach (var (step, factor) in schedule)
        {
            await tree.AdvanceAsync(live, step, cancellationToken).ConfigureAwait(false);
            if (live.Exists(n => n.StepIndex != step))
            {
                break; // the budget stopped the prefix: return what there is
            }

            live = [.. live.SelectMany(n => tree.Fork(n, factor, renoise))];
        }

        await tree.AdvanceAsync(live, tree.Steps, cancellationToken).ConfigureAwait(false);
        var finished = live.Where(n => n.IsComplete).ToList();
        if (tree.Verifiers.Count > 0)
        {
            await tree.VerifyAsync(finished, cancellationToken).ConfigureAwait(false);
        }

        return new StrategyOutcome(live, schedule.Count > 0 ? schedule[0].Step : null);
    }

    /// <summary>
    /// <c>fork_at: auto</c>'s fork for a calibrated step s: at s + Δ (Δ = <see cref="AutoShift"/>·N, at most to N − 1),
    /// its k children renoised back r = ⌊(k−1)·Δ/k⌋ steps, so that s + Δ + k·(N − s − Δ + r) is at most the cost of a
    /// plain fork at s. Under η &gt; 0 a plain fork's children share its state and stay close; these restart apart from a
    /// later, better-formed parent. A calibrated step of 0 (siblings only gain as independent samples) stays at 0.
    /// </summary>
    /// <returns>The fork step and the steps its children renoise back.</returns>
    public static (int Step, int Renoise) AutoFork(int calibrated, int steps, int k)
    {
        if (calibrated <= 0)
        {
            return (0, 0);
        }

        var shift = Math.Min((int)Math.Round(AutoShift * steps, MidpointRounding.AwayFromZero), steps - 1 - calibrated);
        return shift <= 0 ? (calibrated, 0) : (calibrated + shift, (k - 1) * shift / k);
    }

    /// <summary>The steps a fork at <paramref name="step"/> renoises each child back: <see cref="RenoiseSteps"/> when set, else the request's (under η = 0); none at the root.</summary>
    private int Back(PlanContext context, int step) => RenoiseSteps > 0 ? Math.Min(RenoiseSteps, step) : context.RenoisedAt(step);

    private static SharedPrefixStrategy Create(StrategyParameters p)
    {
        var renoise = p.Int("renoise", 0);
        if (!p.Has("fork_schedule"))
        {
            return new SharedPrefixStrategy(p.Int("k", 4), p.Text("fork_at", "auto").Trim() == "auto" ? null : p.Int("fork_at", 0)) { RenoiseSteps = renoise };
        }

        if (p.Has("k") || p.Has("fork_at"))
        {
            throw new InvalidRequestException("strategy.fork_schedule", $"{StrategyNames.SharedPrefix}: give either fork_schedule or k and fork_at, not both.");
        }

        return new SharedPrefixStrategy(p.Get<IReadOnlyList<(int, int)>>("fork_schedule", [], ParseSchedule, "a list of step:factor pairs such as 10:2,30:2")) { RenoiseSteps = renoise };
    }

    private static IReadOnlyList<(int, int)> ParseSchedule(string text) =>
        [.. text.Split(',').Select(pair => pair.Split(':') is [var step, var factor] ? (int.Parse(step, CultureInfo.InvariantCulture), int.Parse(factor, CultureInfo.InvariantCulture)) : throw new FormatException())];
}
