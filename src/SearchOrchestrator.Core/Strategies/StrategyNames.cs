namespace SearchOrchestrator.Strategies;

/// <summary>The names the built-in strategies are registered and chosen by.</summary>
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

    /// <summary>Every built-in name, in the order they are listed.</summary>
    public static readonly IReadOnlyList<string> All = [BestOfN, SharedPrefix, Bfs, Dfs, SearchOverPaths, ZeroOrder, FkSteering];
}
