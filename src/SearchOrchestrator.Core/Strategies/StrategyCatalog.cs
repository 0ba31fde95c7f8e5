using SearchOrchestrator.Search;

namespace SearchOrchestrator.Strategies;

/// <summary>
/// The strategies a host knows, by name: the built-ins, those registered with <c>AddStrategy&lt;T&gt;()</c>, and those
/// found in plug-in assemblies. Builds a configured strategy from its name and text parameters; unknown names and
/// parameters are the caller's mistake.
/// </summary>
public sealed class StrategyCatalog
{
    private readonly Dictionary<string, StrategyDefinition> _byName = new(StringComparer.Ordinal);

    /// <summary>A catalog of <paramref name="definitions"/>, listed in the order given.</summary>
    /// <exception cref="ArgumentException">Two definitions share a name.</exception>
    public StrategyCatalog(IEnumerable<StrategyDefinition> definitions)
    {
        ArgumentNullException.ThrowIfNull(definitions);
        var list = definitions.ToList();
        foreach (var definition in list)
        {
            if (!_byName.TryAdd(definition.Name, definition))
            {
                throw new ArgumentException($"Two strategies are registered as '{definition.Name}'; strategy names must be unique.", nameof(definitions));
            }
        }

        Definitions = list;
    }

    /// <summary>The built-in strategies, in the order of <see cref="StrategyNames.All"/>.</summary>
    public static IReadOnlyList<StrategyDefinition> BuiltIns { get; } =
    [
        BestOfNStrategy.Definition,
        SharedPrefixStrategy.Definition,
        BfsStrategy.Definition,
        DfsStrategy.Definition,
        SearchOverPathsStrategy.Definition,
        ZeroOrderStrategy.Definition,
        FkSteeringStrategy.Definition,
    ];

    /// <summary>A catalog of the built-in strategies only.</summary>
    public static StrategyCatalog BuiltIn { get; } = new(BuiltIns);

    /// <summary>Every strategy, in registration order.</summary>
    public IReadOnlyList<StrategyDefinition> Definitions { get; }

    /// <summary>The definition of the strategy <paramref name="name"/>, or null.</summary>
    public StrategyDefinition? Find(string name) => _byName.GetValueOrDefault(name);

    /// <summary>Creates the strategy <paramref name="name"/> for a search of <paramref name="steps"/> steps.</summary>
    /// <exception cref="InvalidRequestException">The name is not registered, a parameter is not one of its own, or a value does not parse.</exception>
    public ISearchStrategy Create(string name, IReadOnlyDictionary<string, string> parameters, int steps)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        var definition = Find(name)
            ?? throw new InvalidRequestException("strategy", $"unknown strategy {CallerInput.Quote(name)}; use one of: {string.Join(", ", Definitions.Select(d => d.Name))}.");
        var unknown = parameters.Keys.FirstOrDefault(k => !definition.Parameters.Any(p => p.Name == k));
        if (unknown is not null)
        {
            throw new InvalidRequestException($"strategy.{unknown}", $"{name} has no parameter {CallerInput.Quote(unknown)}; its parameters are: {definition.ParameterList}.");
        }

        return definition.Create(new StrategyParameters(name, parameters), steps);
    }
}
