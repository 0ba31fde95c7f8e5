using SearchOrchestrator.Search;
using SearchOrchestrator.Strategies;

namespace SearchOrchestrator.Core.Tests.Strategies;

public sealed class StrategyCatalogTests
{
    [Fact]
    public void Create_EveryName_BuildsThatStrategyWithDefaultsThatValidate()
    {
        foreach (var name in StrategyNames.All)
        {
            var strategy = StrategyCatalog.BuiltIn.Create(name, new Dictionary<string, string>(), 50);

            Assert.Equal(name, strategy.Name);
            strategy.Validate(50);
        }
    }

    [Fact]
    public void Create_Parameters_AreParsed()
    {
        var bfs = (BfsStrategy)StrategyCatalog.BuiltIn.Create("bfs", new Dictionary<string, string> { ["particles"] = "8", ["evaluate_at"] = "10,25", ["mode"] = "prune", ["width"] = "2" }, 50);
        var shared = (SharedPrefixStrategy)StrategyCatalog.BuiltIn.Create("shared_prefix", new Dictionary<string, string> { ["fork_schedule"] = "10:2,30:3" }, 50);

        Assert.Equal((8, BfsMode.Prune, 2), (bfs.Particles, bfs.Mode, bfs.Width));
        Assert.Equal([10, 25], bfs.EvaluateAt);
        Assert.Equal(6, shared.K);
        Assert.Equal([(10, 2), (30, 3)], shared.Schedule);
    }

    [Theory]
    [InlineData("beam", "k", "1", "strategy", "unknown strategy 'beam'; use one of: best_of_n, shared_prefix, bfs, dfs, search_over_paths, zero_order, fk_steering.")]
    [InlineData("best_of_n", "k", "4", "strategy.k", "best_of_n has no parameter 'k'; its parameters are: n=4.")]
    [InlineData("dfs", "threshold", "high", "strategy.threshold", "dfs: threshold must be a number, got 'high'.")]
    [InlineData("fk_steering", "potential", "min", "strategy.potential", "fk_steering: potential must be max or difference or sum or immediate, got 'min'.")]
    public void Create_BadNameOrParameter_ThrowsNamingIt(string name, string key, string value, string argument, string message)
    {
        var ex = Assert.Throws<InvalidRequestException>(() => StrategyCatalog.BuiltIn.Create(name, new Dictionary<string, string> { [key] = value }, 50));

        Assert.Equal(argument, ex.Argument);
        Assert.Equal(message, ex.Message);
    }

    [Fact]
    public void Create_ForkScheduleWithK_ThrowsNamingForkSchedule()
    {
        var ex = Assert.Throws<InvalidRequestException>(() => StrategyCatalog.BuiltIn.Create("shared_prefix", new Dictionary<string, string> { ["fork_schedule"] = "10:2", ["k"] = "4" }, 50));

        Assert.Equal("strategy.fork_schedule", ex.Argument);
        Assert.Equal("shared_prefix: give either fork_schedule or k and fork_at, not both.", ex.Message);
    }

    [Fact]
    public void Create_ZeroGiven_IsUsedAsZeroNotAsTheDefault()
    {
        var dfs = (DfsStrategy)StrategyCatalog.BuiltIn.Create("dfs", new Dictionary<string, string> { ["threshold"] = "0", ["max_backtracks"] = "0" }, 50);

        Assert.Equal((0.0, 0), (dfs.Threshold, dfs.MaxBacktracks));
    }

    [Fact]
    public void Constructor_TwoDefinitionsOfOneName_ThrowsNamingIt()
    {
        var ex = Assert.Throws<ArgumentException>(() => new StrategyCatalog([.. StrategyCatalog.BuiltIns, BestOfNStrategy.Definition]));

        Assert.StartsWith("Two strategies are registered as 'best_of_n'; strategy names must be unique.", ex.Message);
    }

    [Fact]
    public void BuiltIns_EveryName_ListedInTheOrderOfStrategyNames()
    {
        Assert.Equal(StrategyNames.All, StrategyCatalog.BuiltIns.Select(d => d.Name));
        Assert.All(StrategyCatalog.BuiltIns, d => Assert.Equal(d.Name, d.Create(new StrategyParameters(d.Name, new Dictionary<string, string>()), 50).Name));
    }
}
