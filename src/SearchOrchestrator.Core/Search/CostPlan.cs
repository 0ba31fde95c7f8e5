namespace SearchOrchestrator.Search;

/// <summary>What a strategy's plan depends on besides its own parameters.</summary>
/// <param name="Steps">N, the request's sampling steps.</param>
/// <param name="ForkRenoiseSteps">How many steps each fork renoises its children back before they step again: 0 under a
/// stochastic sampler (η &gt; 0), whose children differ by their own noise; at least 1 under η = 0.</param>
public sealed record PlanContext(int Steps, int ForkRenoiseSteps)
{
    /// <summary>The context of <paramref name="request"/>.</summary>
    public static PlanContext For(SearchRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        return new PlanContext(request.Steps, request.Eta > 0 ? 0 : Math.Max(1, request.ForkRenoiseSteps));
    }

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
}
