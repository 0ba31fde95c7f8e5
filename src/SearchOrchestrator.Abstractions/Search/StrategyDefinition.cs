using System.Globalization;

namespace SearchOrchestrator.Search;

/// <summary>
/// A strategy as it is registered: its name, its parameters (for listings, help and errors), and how a configured
/// <see cref="ISearchStrategy"/> is built from named text values (a command line's <c>--param key=value</c>, the
/// contract's <c>named</c> strategy, or the typed messages of the built-ins).
/// </summary>
/// <param name="Name">The name requests choose it by.</param>
/// <param name="Summary">One line on what it does.</param>
/// <param name="Parameters">Every parameter it takes; any other name is refused.</param>
/// <param name="Create">Builds it for a search of the given steps (defaults may scale with N) from the parameters given.</param>
public sealed record StrategyDefinition(string Name, string Summary, IReadOnlyList<StrategyParameter> Parameters, Func<StrategyParameters, int, ISearchStrategy> Create)
{
    /// <summary>The parameters as <c>name=value</c>, comma-separated (e.g. <c>n=4</c>).</summary>
    public string ParameterList => string.Join(", ", Parameters.Select(p => $"{p.Name}={p.Value}"));
}

/// <summary>One parameter of a strategy.</summary>
/// <param name="Name">Its name, e.g. <c>evaluate_at</c>.</param>
/// <param name="Value">Its value as listings show it: the default (<c>4</c>, <c>N/5</c>), or the forms it takes with the default (<c>resample|prune</c>, <c>&lt;steps&gt; (default every N/5)</c>).</param>
/// <param name="Description">What it sets.</param>
public sealed record StrategyParameter(string Name, string Value, string Description);

/// <summary>
/// The named text values a strategy is built from, read as typed values; a value that does not parse is an
/// <see cref="InvalidRequestException"/> naming <c>strategy.&lt;name&gt;</c>. A missing name reads as its fallback;
/// a given value is used as given, zero included.
/// </summary>
public sealed class StrategyParameters(string strategy, IReadOnlyDictionary<string, string> values)
{
    /// <summary>The strategy the values are for (named in errors).</summary>
    public string Strategy { get; } = strategy;

    /// <summary>The values by parameter name.</summary>
    public IReadOnlyDictionary<string, string> Values { get; } = values;

    /// <summary>True when <paramref name="name"/> was given.</summary>
    public bool Has(string name) => Values.ContainsKey(name);

    /// <summary>The text of <paramref name="name"/>, or <paramref name="fallback"/>.</summary>
    public string Text(string name, string fallback) => Values.TryGetValue(name, out var v) ? v : fallback;

    /// <summary>A whole number.</summary>
    public int Int(string name, int fallback) => Get(name, fallback, s => int.Parse(s, CultureInfo.InvariantCulture), "a whole number");

    /// <summary>A number.</summary>
    public double Double(string name, double fallback) => Get(name, fallback, s => double.Parse(s, CultureInfo.InvariantCulture), "a number");

    /// <summary><c>true</c> or <c>false</c>.</summary>
    public bool Bool(string name, bool fallback) => Get(name, fallback, bool.Parse, "true or false");

    /// <summary>An enum member by its snake_case or PascalCase name.</summary>
    public T Enum<T>(string name, T fallback)
        where T : struct, System.Enum =>
        Get(name, fallback, s => System.Enum.TryParse<T>(s.Replace("_", string.Empty, StringComparison.Ordinal), ignoreCase: true, out var e) && System.Enum.IsDefined(e) ? e : throw new FormatException(), string.Join(" or ", System.Enum.GetNames<T>().Select(n => n.ToLowerInvariant())));

    /// <summary>A comma-separated list of steps.</summary>
    public IReadOnlyList<int> Steps(string name, IReadOnlyList<int> fallback) =>
        Get(name, fallback, s => s.Split(',').Select(x => int.Parse(x, CultureInfo.InvariantCulture)).ToArray(), "a comma-separated list of steps");

    /// <summary>Any value: <paramref name="parse"/> throws <see cref="FormatException"/> or <see cref="OverflowException"/> for text that is not <paramref name="expected"/>.</summary>
    public T Get<T>(string name, T fallback, Func<string, T> parse, string expected)
    {
        ArgumentNullException.ThrowIfNull(parse);
        if (!Values.TryGetValue(name, out var text))
        {
            return fallback;
        }

        try
        {
            return parse(text.Trim());
        }
        catch (Exception ex) when (ex is FormatException or OverflowException)
        {
            throw new InvalidRequestException($"strategy.{name}", $"{Strategy}: {name} must be {expected}, got {CallerInput.Quote(text)}.");
        }
    }
}
