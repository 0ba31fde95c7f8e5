using SearchOrchestrator.Strategies;

namespace SearchOrchestrator.Search;

/// <summary>
/// What a search will spend, worked out from its request before it runs, so a caller can size a budget. For a
/// strategy whose cost is fixed by its parameters <see cref="NfeMin"/> equals <see cref="Nfe"/>; for an adaptive
/// one (DFS backtracks on scores, FK steering and BFS fork on them) the two bound the spend.
/// </summary>
public sealed record SearchEstimate
{
    /// <summary>The strategy's registered name.</summary>
    public required string Strategy { get; init; }

    /// <summary>N, the request's sampling steps.</summary>
    public required int Steps { get; init; }

    /// <summary>The most NFE the search can spend (its plan, capped by the budget's <c>max_nfe</c>).</summary>
    public required long Nfe { get; init; }

    /// <summary>The least NFE the search can spend when it is not stopped early; equals <see cref="Nfe"/> when exact.</summary>
    public required long NfeMin { get; init; }

    /// <summary>The most that running every trajectory of the tree on its own would cost (the account's <c>nfe_independent</c>).</summary>
    public required long NfeIndependent { get; init; }

    /// <summary>The least that running every trajectory on its own would cost.</summary>
    public required long NfeIndependentMin { get; init; }

    /// <summary>True when NFE and independent NFE are known exactly in advance.</summary>
    public bool Exact => Nfe == NfeMin && NfeIndependent == NfeIndependentMin;

    /// <summary>m: <see cref="Nfe"/> in units of one trajectory of N steps (for a fork of k at s, k − (k−1)·s/N).</summary>
    public double Multiplier => (double)Nfe / Steps;

    /// <summary>The least multiplier, <see cref="NfeMin"/> / N.</summary>
    public double MultiplierMin => (double)NfeMin / Steps;

    /// <summary>True when the budget's <c>max_nfe</c> is below what the strategy would otherwise spend.</summary>
    public required bool BudgetLimited { get; init; }

    /// <summary>True for <c>fork_at: auto</c>: a first request per model, condition and sampler settings also pays a one-off calibration (<see cref="CalibrationNfe"/>).</summary>
    public required bool Calibrates { get; init; }

    /// <summary>What the request spends calibrating <c>fork_at: auto</c> before it searches (0 once its settings are calibrated); it counts against the budget, so <see cref="Nfe"/> is what is left of it.</summary>
    public long CalibrationNfe { get; init; }

    /// <summary>One sentence on how the numbers were worked out.</summary>
    public required string Basis { get; init; }
}

/// <summary>Works out a <see cref="SearchEstimate"/> from a request's strategy, steps, sampler and budget.</summary>
public static class SearchEstimator
{
    /// <summary>
    /// Estimates <paramref name="request"/>. The request should have been validated (<see cref="SearchEngine.Validate"/>);
    /// the strategy's own parameters are checked here too.
    /// </summary>
    /// <exception cref="InvalidRequestException">A strategy parameter is wrong for the request's steps.</exception>
    /// <param name="request">The search.</param>
    /// <param name="calibrationNfe">What it spends calibrating first (<see cref="ForkCalibration.NfeToCalibrate"/>), counted against its budget.</param>
    public static SearchEstimate Estimate(SearchRequest request, long calibrationNfe = 0)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (request.Strategy is null)
        {
            throw new InvalidRequestException("strategy", "a strategy is required.");
        }

        if (request.Steps < 1)
        {
            throw new InvalidRequestException("steps", $"steps must be at least 1, got {request.Steps}.");
        }

        request.Strategy.Validate(request.Steps);
        // Under η = 0 a fork renoises its children back (at most) this many steps, which they then step again.
        var renoise = request.Eta > 0 ? 0 : Math.Max(1, request.ForkRenoiseSteps);
        var plan = PlanOf(request.Strategy, request.Steps, renoise);
        var cap = request.Budget.MaxNfe is { } max ? Math.Max(0, max - calibrationNfe) : long.MaxValue;
        return new SearchEstimate
        {
            Strategy = request.Strategy.Name,
            Steps = request.Steps,
            Nfe = Math.Min(plan.Nfe.Max, cap),
            NfeMin = Math.Min(plan.Nfe.Min, cap),
            NfeIndependent = plan.Independent.Max,
            NfeIndependentMin = Math.Min(plan.Independent.Min, plan.Independent.Max),
            BudgetLimited = plan.Nfe.Max > cap,
            Calibrates = request.Strategy is SharedPrefixStrategy { ForkAt: null },
            CalibrationNfe = calibrationNfe,
            Basis = plan.Basis,
        };
    }

    private readonly record struct Range(long Min, long Max)
    {
        public static Range Of(long value) => new(value, value);
    }

    private readonly record struct Cost(Range Nfe, Range Independent, string Basis);

    private static Cost PlanOf(ISearchStrategy strategy, int n, int renoise) => strategy switch
    {
        BestOfNStrategy s => new(Range.Of((long)s.N * n), Range.Of((long)s.N * n), $"{s.N} independent trajectories of {n} steps."),
        SharedPrefixStrategy { ForkAt: null } s => SharedPrefixAuto(s, n, renoise),
        SharedPrefixStrategy s => SharedPrefix(s, n, renoise),
        BfsStrategy s => Bfs(s, n, renoise),
        DfsStrategy s => Dfs(s, n),
        SearchOverPathsStrategy s => SearchOverPaths(s, n),
        ZeroOrderStrategy s => ZeroOrder(s, n),
        FkSteeringStrategy s => FkSteering(s, n, renoise),
        _ => new(new Range(0, strategy.PlannedNfe(n)), new Range(0, long.MaxValue), "the strategy's own plan, as an upper bound."),
    };

    /// <summary>Live trajectories step from fork to fork; each fork under η = 0 adds its renoised steps per child.</summary>
    private static Cost SharedPrefix(SharedPrefixStrategy s, int n, int renoise)
    {
        long nfe = 0, live = 1, at = 0, path = 0;
        foreach (var (step, factor) in s.Schedule)
        {
            nfe += live * (step - at);
            path += step - at;
            var back = step == 0 ? 0 : Math.Min(renoise, step); // a root's children draw fresh prior noise instead
            live *= factor;
            nfe += live * back;
            path += back;
            at = step;
        }

        nfe += live * (n - at);
        path += n - at;
        var basis = s.Schedule.Count == 1
            ? FormattableString.Invariant($"one trajectory to step {s.ForkAt}, forked {s.K} ways: m = k − (k−1)·s/N = {s.K} − {s.K - 1}·{s.ForkAt}/{n}{(renoise > 0 ? $", plus {renoise} renoised step(s) per child under η = 0" : string.Empty)}.")
            : $"a fork schedule of {s.Schedule.Count} forks to {s.K} leaves.";
        return new(Range.Of(nfe), Range.Of(live * path), basis);
    }

    /// <summary>The calibrated fork step is unknown up front: anywhere from 0 (k·N) to N − 1.</summary>
    private static Cost SharedPrefixAuto(SharedPrefixStrategy s, int n, int renoise)
    {
        var latest = n - 1;
        var back = latest == 0 ? 0 : Math.Min(renoise, latest);
        var min = latest + ((long)s.K * (1 + back));
        // A fork at step s costs s + k·(N − s + back(s)): most at s = back (= 0 under η > 0).
        var max = ((long)s.K * n) + back;
        return new(new Range(Math.Min(min, max), Math.Max(min, max)), new Range((long)s.K * n, (long)s.K * (n + back)),
            $"fork_at: auto forks {s.K} ways at a calibrated step between 0 and {latest}; a first request per model and condition also pays the calibration.");
    }

    /// <summary>
    /// K particles throughout; a continuation drawn c &gt; 1 times is forked (renoised under η = 0). Dropped particles
    /// end at their evaluation step; prune mode drops exactly K − w, resampling drops 0 … K − 1.
    /// </summary>
    private static Cost Bfs(BfsStrategy s, int n, int renoise)
    {
        long k = s.Particles;
        var nfe = new Range(k * n, (k * n) + (s.EvaluateAt.Count * k * renoise));
        var pruneWidth = Math.Min(s.Width, s.Particles);
        long dropped = 0, droppedMax = 0;
        foreach (var step in s.EvaluateAt)
        {
            droppedMax += (k - 1) * (step + (renoise * s.EvaluateAt.Count));
            dropped += s.Mode == BfsMode.Prune ? (k - pruneWidth) * step : 0;
        }

        var independentMax = (k * (n + (renoise * s.EvaluateAt.Count))) + (s.Mode == BfsMode.Prune && renoise == 0 ? dropped : droppedMax);
        return new(nfe, new Range((k * n) + dropped, independentMax),
            $"{k} particles for {n} steps; which particles the {s.EvaluateAt.Count} evaluations drop or fork depends on their scores.");
    }

    /// <summary>One trajectory plus at most <c>max_backtracks</c> retries of at most <c>recur_depth</c> steps each.</summary>
    private static Cost Dfs(DfsStrategy s, int n)
    {
        long extra = (long)s.MaxBacktracks * s.RecurDepth;
        // Each abandoned retry ends a trajectory whose path is at most the whole N plus every backtrack's steps.
        return new(new Range(n, n + extra), new Range(n, (1 + (long)s.MaxBacktracks) * (n + extra)),
            $"adaptive: {n} steps, plus up to {s.MaxBacktracks} backtracks of at most {s.RecurDepth} steps when a score falls below {s.Threshold}.");
    }

    /// <summary>Fixed rounds: every live candidate has the same path length, and each round drops C·M − C of them.</summary>
    private static Cost SearchOverPaths(SearchOverPathsStrategy s, int n)
    {
        long c = s.Candidates, m = s.Continuations;
        long nfe = c * s.StartStep, path = s.StartStep, independent = 0;
        for (var step = s.StartStep; step < n;)
        {
            var back = Math.Max(0, step - s.Forward);
            var next = Math.Min(n, back + s.Backward);
            nfe += c * m * (next - back);
            path += next - back;
            independent += ((c * m) - c) * path;
            step = next;
        }

        independent += c * path;
        return new(Range.Of(nfe), Range.Of(independent), $"{c} candidates to step {s.StartStep}, then rounds of {m} continuations renoised back {s.Forward} and denoised {s.Backward} steps.");
    }

    /// <summary>The pivot and every neighbour are independent roots run the whole way.</summary>
    private static Cost ZeroOrder(ZeroOrderStrategy s, int n)
    {
        var nfe = (long)n * (1 + ((long)s.Neighbours * s.Iterations));
        return new(Range.Of(nfe), Range.Of(nfe), $"a pivot and {s.Iterations} iteration(s) of {s.Neighbours} neighbours, each a whole trajectory.");
    }

    /// <summary>K particles throughout; resampling forks the drawn ones (renoised under η = 0) and drops 0 … K − 1.</summary>
    private static Cost FkSteering(FkSteeringStrategy s, int n, int renoise)
    {
        long k = s.Particles;
        var resamples = StrategyArguments.Every(s.ResampleEvery, n);
        long droppedMax = resamples.Sum(step => (k - 1) * (step + (renoise * resamples.Count)));
        return new(new Range(k * n, (k * n) + (resamples.Count * k * renoise)), new Range(k * n, (k * (n + (renoise * resamples.Count))) + droppedMax),
            $"adaptive: {k} particles for {n} steps; which the {resamples.Count} resamplings drop or fork depends on their potentials.");
    }
}
