using System.Globalization;

namespace SearchOrchestrator.Strategies;

/// <summary>
/// Builds a strategy from its name and text parameters (the command line's <c>--param key=value</c>), filling in
/// documented defaults scaled to the step count N. Unknown names and parameters are the caller's mistake.
/// </summary>
public static class StrategyCatalog
{
    /// <summary>Each strategy's parameters and defaults, for help text.</summary>
    public static readonly IReadOnlyDictionary<string, string> Parameters = new Dictionary<string, string>
    {
        [StrategyNames.BestOfN] = "n=4",
        [StrategyNames.SharedPrefix] = "k=4, fork_at=auto|<step> (default auto), fork_schedule=<step>:<factor>,… (instead of k and fork_at)",
        [StrategyNames.Bfs] = "particles=4, evaluate_at=<steps> (default every N/5), mode=resample|prune, temperature=1, width=1",
        [StrategyNames.Dfs] = "evaluate_at=<steps> (default every N/5), threshold=0.5, recur_depth=N/10, max_backtracks=8",
        [StrategyNames.SearchOverPaths] = "candidates=2, continuations=2, start_step=N/5, forward=N/10, backward=N/5",
        [StrategyNames.ZeroOrder] = "neighbours=3, similarity=0.9, iterations=3",
        [StrategyNames.FkSteering] = "particles=4, potential=max|difference|sum|immediate, lambda=10, resample_every=N/10, adaptive=false",
    };

    /// <summary>Creates the strategy <paramref name="name"/> for a search of <paramref name="steps"/> steps.</summary>
    public static ISearchStrategy Create(string name, IReadOnlyDictionary<string, string> parameters, int steps)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        var p = new Reader(name, parameters);
        var fifth = Math.Max(1, steps / 5);
        var tenth = Math.Max(1, steps / 10);
        ISearchStrategy strategy = name switch
        {
            StrategyNames.BestOfN => new BestOfNStrategy(p.Int("n", 4)),
            StrategyNames.SharedPrefix => p.Has("fork_schedule")
                ? new SharedPrefixStrategy(p.Schedule("fork_schedule"))
                : new SharedPrefixStrategy(p.Int("k", 4), p.Text("fork_at", "auto") == "auto" ? null : p.Int("fork_at", 0)),
            StrategyNames.Bfs => new BfsStrategy(
                p.Int("particles", 4),
                p.Steps("evaluate_at", StrategyArguments.Every(fifth, steps)),
                p.Enum("mode", BfsMode.Resample),
                p.Double("temperature", 1.0),
                p.Int("width", 1)),
            StrategyNames.Dfs => new DfsStrategy(
                p.Steps("evaluate_at", StrategyArguments.Every(fifth, steps)),
                p.Double("threshold", 0.5),
                p.Int("recur_depth", tenth),
                p.Int("max_backtracks", 8)),
            StrategyNames.SearchOverPaths => new SearchOverPathsStrategy(
                p.Int("candidates", 2),
                p.Int("continuations", 2),
                p.Int("start_step", fifth),
                p.Int("forward", tenth),
                p.Int("backward", fifth)),
            StrategyNames.ZeroOrder => new ZeroOrderStrategy(p.Int("neighbours", 3), p.Double("similarity", 0.9), p.Int("iterations", 3)),
            StrategyNames.FkSteering => new FkSteeringStrategy(
                p.Int("particles", 4),
                p.Enum("potential", FkPotential.Max),
                p.Double("lambda", 10),
                p.Int("resample_every", tenth),
                p.Bool("adaptive", false)),
            _ => throw new InvalidRequestException("strategy", $"unknown strategy {CallerInput.Quote(name)}; use one of: {string.Join(", ", StrategyNames.All)}."),
        };
        p.RejectUnused();
        return strategy;
    }

    private sealed class Reader(string strategy, IReadOnlyDictionary<string, string> values)
    {
        private readonly HashSet<string> _used = [];

        public bool Has(string key) => values.ContainsKey(key);

        public string Text(string key, string fallback)
        {
            _used.Add(key);
            return values.TryGetValue(key, out var v) ? v : fallback;
        }

        public int Int(string key, int fallback) => Parse(key, fallback, s => int.Parse(s, CultureInfo.InvariantCulture), "a whole number");

        public double Double(string key, double fallback) => Parse(key, fallback, s => double.Parse(s, CultureInfo.InvariantCulture), "a number");

        public bool Bool(string key, bool fallback) => Parse(key, fallback, bool.Parse, "true or false");

        public T Enum<T>(string key, T fallback)
            where T : struct, System.Enum =>
            Parse(key, fallback, s => System.Enum.TryParse<T>(s.Replace("_", string.Empty, StringComparison.Ordinal), ignoreCase: true, out var e) && System.Enum.IsDefined(e) ? e : throw new FormatException(), string.Join(" or ", System.Enum.GetNames<T>().Select(n => n.ToLowerInvariant())));

        public IReadOnlyList<int> Steps(string key, IReadOnlyList<int> fallback) =>
            Parse(key, fallback, s => s.Split(',').Select(x => int.Parse(x, CultureInfo.InvariantCulture)).ToArray(), "a comma-separated list of steps");

        public IReadOnlyList<(int, int)> Schedule(string key) =>
            Parse<IReadOnlyList<(int, int)>>(key, [], s => [.. s.Split(',').Select(pair => pair.Split(':') is [var step, var factor] ? (int.Parse(step, CultureInfo.InvariantCulture), int.Parse(factor, CultureInfo.InvariantCulture)) : throw new FormatException())], "a list of step:factor pairs such as 10:2,30:2");

        public void RejectUnused()
        {
            var unknown = values.Keys.Where(k => !_used.Contains(k)).ToList();
            if (unknown.Count > 0)
            {
                throw new InvalidRequestException($"strategy.{unknown[0]}", $"{strategy} has no parameter {CallerInput.Quote(unknown[0])}; its parameters are: {Parameters[strategy]}.");
            }
        }

        private T Parse<T>(string key, T fallback, Func<string, T> parse, string expected)
        {
            _used.Add(key);
            if (!values.TryGetValue(key, out var text))
            {
                return fallback;
            }

            try
            {
                return parse(text.Trim());
            }
            catch (Exception ex) when (ex is FormatException or OverflowException)
            {
                throw new InvalidRequestException($"strategy.{key}", $"{strategy}: {key} must be {expected}, got {CallerInput.Quote(text)}.");
            }
        }
    }
}
