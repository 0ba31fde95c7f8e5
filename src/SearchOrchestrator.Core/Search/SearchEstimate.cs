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

    /// <summary>The most of <see cref="Nfe"/> that previews (lookahead scoring) spend.</summary>
    public long PreviewNfe { get; init; }

    /// <summary>One sentence on how the numbers were worked out.</summary>
    public required string Basis { get; init; }

    /// <summary>
    /// A pipeline's prompts the text encoder would encode now (the prompt and the negative or empty prompt, less those the
    /// shared cache holds or is encoding); 0 for other models. Exact when the search starts before the cache changes.
    /// </summary>
    public long EncoderCalls { get; init; }

    /// <summary>
    /// The most latents a pipeline's search decodes (0 for other models): the returned candidates (at most
    /// <c>candidates</c>, and at most the plan's trajectories), exact for an exact plan without pixel verifiers; with
    /// pixel verifiers each verified node step adds one, bounded by the NFE (and by <c>budget.max_decoder_calls</c>).
    /// </summary>
    public long DecoderCalls { get; init; }

    /// <summary>The most the request can spend in all, <see cref="Nfe"/> plus <see cref="CalibrationNfe"/>: what a per-request NFE cap admits it by.</summary>
    public long NfeWithCalibration => Nfe + CalibrationNfe;
}

/// <summary>Works out a <see cref="SearchEstimate"/> from a request's strategy, steps, sampler and budget.</summary>
internal static class SearchEstimator
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

        if (request.PreviewSteps is < 1)
        {
            throw new InvalidRequestException("preview_steps", $"preview_steps must be at least 1 (1 scores the raw x0-prediction), got {request.PreviewSteps}.");
        }

        request.Strategy.Validate(request.Steps);
        var plan = request.Strategy.Plan(request.ToPlanContext());
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
            Calibrates = plan.CalibratesForkStep,
            CalibrationNfe = calibrationNfe,
            PreviewNfe = Math.Min(plan.PreviewNfe.Max, cap),
            Basis = plan.Basis,
        };
    }
}
