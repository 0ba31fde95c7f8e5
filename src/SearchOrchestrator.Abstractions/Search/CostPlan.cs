namespace SearchOrchestrator.Search;

/// <summary>What a strategy's plan depends on besides its own parameters.</summary>
/// <param name="Steps">N, the request's sampling steps.</param>
/// <param name="ForkRenoiseSteps">How many steps each fork renoises its children back before they step again: 0 under a
/// stochastic sampler (η &gt; 0), whose children differ by their own noise; at least 1 under η = 0.</param>
/// <param name="PreviewSteps">The request's preview steps j, for strategies that do not set their own (1 = no previews); null when the request sets none.</param>
public sealed record PlanContext(int Steps, int ForkRenoiseSteps, int? PreviewSteps = null)
{
    /// <summary>
    /// The NFE of scoring one node at <paramref name="step"/> with <paramref name="previewSteps"/> (null: the request's,
    /// else <paramref name="strategyDefault"/>): min(j, N − step) for a preview (j &gt; 1) of a node short of the last step,
    /// else 0 (its raw x0-prediction).
    /// </summary>
    public long PreviewNfe(int? previewSteps, int step, int strategyDefault = 1) => PreviewStepCount(previewSteps ?? PreviewSteps ?? strategyDefault, step, Steps);

    /// <summary>The steps a preview of j = <paramref name="previewSteps"/> steps takes from step <paramref name="step"/> of <paramref name="steps"/>: none for j = 1 or a finished node.</summary>
    public static int PreviewStepCount(int previewSteps, int step, int steps) => previewSteps > 1 && step < steps ? Math.Min(previewSteps, steps - step) : 0;

    /// <summary>The steps a fork at <paramref name="step"/> renoises each child back: none at the root, whose children draw fresh prior noise.</summary>
    public int RenoisedAt(int step) => step == 0 ? 0 : Math.Min(ForkRenoiseSteps, step);
}

/// <summary>An amount of NFE known exactly (<see cref="Min"/> = <see cref="Max"/>) or bounded.</summary>
/// <param name="Min">The least.</param>
/// <param name="Max">The most.</param>
public readonly record struct NfeRange(long Min, long Max)
{
    /// <summary>Exactly <paramref name="value"/>.</summary>
    public static NfeRange Exactly(long value) => new(value, value);

    /// <summary>True when <see cref="Min"/> equals <see cref="Max"/>.</summary>
    public bool IsExact => Min == Max;
}

/// <summary>
/// A strategy's cost, from its parameters and the <see cref="PlanContext"/> alone: the one plan that the server's
/// <c>MaxNfePerRequest</c> admission, <c>Estimate</c> and the search itself agree on.
/// </summary>
/// <param name="Nfe">The NFE the search spends when its budget does not stop it.</param>
/// <param name="Independent">What running every trajectory of its tree on its own would cost (the account's <c>nfe_independent</c>).</param>
/// <param name="Basis">One sentence on how the numbers were worked out.</param>
public sealed record CostPlan(NfeRange Nfe, NfeRange Independent, string Basis)
{
    /// <summary>True when the search first asks the engine's fork-step calibration (<c>fork_at: auto</c>), whose NFE comes on top.</summary>
    public bool CalibratesForkStep { get; init; }

    /// <summary>The part of <see cref="Nfe"/> (and of <see cref="Independent"/>) spent on previews.</summary>
    public NfeRange PreviewNfe { get; init; }
}
