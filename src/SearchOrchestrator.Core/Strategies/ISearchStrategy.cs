using SearchOrchestrator.Search;

namespace SearchOrchestrator.Strategies;

/// <summary>What a strategy hands back: the nodes it proposes (the engine ranks them) and the fork step it used, if any.</summary>
public sealed record StrategyOutcome(IReadOnlyList<Node> Candidates, int? ForkStep = null);

/// <summary>
/// A search policy: decides which nodes to advance, fork, verify, prune or renoise. Written as plain async code
/// against the <see cref="TrajectoryTree"/>; it knows nothing of batching or placement.
/// </summary>
public interface ISearchStrategy
{
    /// <summary>The registered name (see <see cref="StrategyNames"/>).</summary>
    string Name { get; }

    /// <summary>True when the strategy cannot run without at least one verifier.</summary>
    bool NeedsVerifiers { get; }

    /// <summary>Checks the parameters against the request's step count; throws <see cref="InvalidRequestException"/> naming the parameter.</summary>
    void Validate(int steps);

    /// <summary>
    /// The most NFE the strategy can spend at <paramref name="steps"/> steps with a stochastic sampler (η &gt; 0; under
    /// η = 0 each fork adds its renoise steps), so a server can refuse a request over its cap before it runs.
    /// </summary>
    long PlannedNfe(int steps);

    /// <summary>Runs the search on <paramref name="tree"/>.</summary>
    Task<StrategyOutcome> RunAsync(TrajectoryTree tree, CancellationToken cancellationToken = default);
}

/// <summary>The names strategies are registered and chosen by.</summary>
public static class StrategyNames
{
    /// <summary><see cref="BestOfNStrategy"/>.</summary>
    public const string BestOfN = "best_of_n";

    /// <summary><see cref="SharedPrefixStrategy"/>.</summary>
    public const string SharedPrefix = "shared_prefix";

    /// <summary><see cref="BfsStrategy"/>.</summary>
    public const string Bfs = "bfs";

    /// <summary><see cref="DfsStrategy"/>.</summary>
    public const string Dfs = "dfs";

    /// <summary><see cref="SearchOverPathsStrategy"/>.</summary>
    public const string SearchOverPaths = "search_over_paths";

    /// <summary><see cref="ZeroOrderStrategy"/>.</summary>
    public const string ZeroOrder = "zero_order";

    /// <summary><see cref="FkSteeringStrategy"/>.</summary>
    public const string FkSteering = "fk_steering";

    /// <summary>Every name.</summary>
    public static readonly IReadOnlyList<string> All = [BestOfN, SharedPrefix, Bfs, Dfs, SearchOverPaths, ZeroOrder, FkSteering];
}

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
}

/// <summary>Ordering helpers shared by strategies.</summary>
internal static class NodeRanking
{
    /// <summary>Best first: higher score, then earlier node (a deterministic tie-break).</summary>
    public static IOrderedEnumerable<Node> BestFirst(this IEnumerable<Node> nodes) =>
        nodes.OrderByDescending(n => n.Score ?? double.NegativeInfinity).ThenBy(n => n.Id);
}
