using SearchOrchestrator.Search;

namespace SearchOrchestrator.Strategies;

/// <summary>Parameter checks that throw <see cref="InvalidRequestException"/> naming <c>strategy.&lt;param&gt;</c>.</summary>
internal static class StrategyArguments
{
    public static void AtLeast(string strategy, string parameter, double value, double minimum)
    {
        if (!(value >= minimum))
        {
            throw new InvalidRequestException($"strategy.{parameter}", $"{strategy}: {parameter} must be at least {minimum}, got {value}.");
        }
    }

    public static void Within(string strategy, string parameter, double value, double minimum, double maximum)
    {
        if (!(value >= minimum && value <= maximum))
        {
            throw new InvalidRequestException($"strategy.{parameter}", $"{strategy}: {parameter} must be between {minimum} and {maximum}, got {value}.");
        }
    }

    /// <summary>Evaluation steps: strictly increasing, each in [1, steps − 1].</summary>
    public static void EvaluationSteps(string strategy, string parameter, IReadOnlyList<int> values, int steps)
    {
        for (var i = 0; i < values.Count; i++)
        {
            if (values[i] < 1 || values[i] >= steps || (i > 0 && values[i] <= values[i - 1]))
            {
                throw new InvalidRequestException($"strategy.{parameter}", $"{strategy}: {parameter} must be strictly increasing steps between 1 and {steps - 1}, got {CallerInput.QuoteList(values)}.");
            }
        }
    }

    /// <summary>Every <paramref name="interval"/> steps, from the first interval up to but not including N.</summary>
    public static IReadOnlyList<int> Every(int interval, int steps) =>
        [.. Enumerable.Range(1, Math.Max(0, (steps - 1) / interval)).Select(i => i * interval)];

    /// <summary>The strategy's own <c>preview_steps</c>, or null to take the request's.</summary>
    public static int? PreviewSteps(StrategyParameters parameters) => parameters.Has(PreviewStepsName) ? parameters.Int(PreviewStepsName, 1) : null;

    /// <summary>Checks a strategy's own <c>preview_steps</c>.</summary>
    public static void PreviewSteps(string strategy, int? previewSteps)
    {
        if (previewSteps is { } j)
        {
            AtLeast(strategy, PreviewStepsName, j, 1);
        }
    }

    /// <summary>The <c>preview_steps</c> parameter as <c>searchorch strategies</c> lists it, defaulting to the request's.</summary>
    public static StrategyParameter PreviewStepsParameter { get; } = PreviewStepsParameterWithDefault("the request's, else 1");

    /// <summary>The <c>preview_steps</c> parameter of a strategy with a tuned default of its own (used when the request sets none).</summary>
    public static StrategyParameter PreviewStepsParameterWithDefault(string @default) =>
        new(PreviewStepsName, @default, "j: score mid-trajectory nodes on a preview of j deterministic steps to a clean sample (1 = the raw x0-prediction); its NFE is counted");

    private const string PreviewStepsName = "preview_steps";

    /// <summary>The name of the forks' <c>renoise</c> parameter.</summary>
    public const string RenoiseName = "renoise";

    /// <summary>The <c>renoise</c> parameter of strategies that fork resampled particles.</summary>
    public static StrategyParameter RenoiseParameter { get; } =
        new(RenoiseName, "0 (the request's fork_renoise_steps under η = 0)", "steps each fork renoises its children back with their own noise, under any η: copies of a resampled particle start apart (each pays the steps again)");

    /// <summary>N/5, at least 1: the default spacing of evaluation steps.</summary>
    public static int Fifth(int steps) => Math.Max(1, steps / 5);

    /// <summary>N/10, at least 1.</summary>
    public static int Tenth(int steps) => Math.Max(1, steps / 10);
}

/// <summary>Ordering helpers shared by strategies.</summary>
internal static class NodeRanking
{
    /// <summary>Best first: higher score, then earlier node (a deterministic tie-break).</summary>
    public static IOrderedEnumerable<ISearchNode> BestFirst(this IEnumerable<ISearchNode> nodes) =>
        nodes.OrderByDescending(n => n.Score ?? double.NegativeInfinity).ThenBy(n => n.Id);
}
