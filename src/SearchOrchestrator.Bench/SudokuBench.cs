using System.Globalization;
using SearchOrchestrator.Denoising;
using SearchOrchestrator.Processes;
using SearchOrchestrator.Search;
using SearchOrchestrator.Strategies;
using SearchOrchestrator.Verifiers;

namespace SearchOrchestrator.Bench;

/// <summary>
/// <c>searchorch bench search --model sudoku</c>: solve rate against NFE for every strategy on the masked process,
/// over seeded unique-solution puzzles of mixed difficulty (six levels of givens). A grid counts as solved when it
/// violates no row, column or box constraint and keeps every given (<see cref="Sudoku.Check"/>).
/// </summary>
internal static class SudokuBench
{
    /// <summary>Givens per difficulty level, easiest first.</summary>
    internal static readonly IReadOnlyList<int> Levels = [40, 36, 32, 29, 26, 24];

    /// <summary>The sampler of the single-pass baseline: confidence order, most likely tokens.</summary>
    internal static readonly SamplerSettings Greedy = MaskedProcess.DefaultSettings;

    /// <summary>
    /// The sampler searches draw with: confidence order over tokens drawn at temperature 2, so branches differ. The model
    /// is confident enough that at temperature 1 four independent samples mostly coincide (measured: best-of-4 solved no
    /// more than one sample did on the smoke set), while temperature 2 spreads them.
    /// </summary>
    internal static readonly SamplerSettings Sampled = MaskedProcess.DefaultSettings.With(SamplerParameters.Temperature, 2.0);

    /// <summary>
    /// Most likely tokens in confidence order, with random re-masking: branches differ only in which positions a fork or
    /// a backtrack re-masks (by the child's key), and every token is the model's best guess in its context.
    /// </summary>
    internal static readonly SamplerSettings GreedyRandomRemask = Greedy.With(SamplerParameters.Remask, RemaskNames.Random);

    /// <summary><paramref name="perLevel"/> puzzles per level from <paramref name="seed"/>: (puzzle text, givens level).</summary>
    public static List<(string Puzzle, int Level)> Puzzles(int perLevel, int seed = 20261124)
    {
        var random = new Random(seed);
        var puzzles = new List<(string, int)>();
        foreach (var level in Levels)
        {
            for (var i = 0; i < perLevel; i++)
            {
                puzzles.Add((Sudoku.Format(Sudoku.Dig(Sudoku.SolvedGrid(random), level, random)), level));
            }
        }

        return puzzles;
    }

    /// <summary>Runs every row over the split's puzzles and writes the table (and its rows as <c>sudoku</c> results) to <paramref name="report"/>.</summary>
    public static async Task RunAsync(SearchEngine engine, DenoiserDescription model, SearchSettings settings, BenchReport report, BenchProgress progress, CancellationToken cancellationToken)
    {
        var (perLevel, only, concurrency) = (settings.Seeds, settings.Strategies, settings.Concurrency);
        var puzzles = Puzzles(perLevel, BenchSplits.PuzzleSeed(settings.Split));
        var n = settings.Steps;
        var configs = (settings.Rows is { } rows ? [.. rows.Select(FromRow)] : Configurations(n)).Where(c => only is null || only.Contains(c.Name)).ToList();
        if (configs.Count == 0)
        {
            throw new InvalidRequestException("strategies", $"--strategies names none of: {string.Join(", ", StrategyNames.All)}.");
        }

        var givens = puzzles.Select(p => p.Puzzle.Count(ch => ch != '.')).ToList();
        report.Paragraph($"{model.Name}: {puzzles.Count} puzzles of the {(settings.Split == BenchSplit.HeldOut ? "held-out" : "tuning")} split (generator seed {BenchSplits.PuzzleSeed(settings.Split)}; {perLevel} per level, givens {string.Join("/", Levels)}; actual mean {givens.Average():0.0}), N = {n} unmasking steps, verifier {SudokuVerifier.VerifierName} ({SudokuVerifier.ConflictsName} for judge=state); solved = no violated constraint.");
        var outcomes = new List<SudokuRow>();
        var table = new MarkdownTable([
            "strategy", "parameters", "sampler", "mean NFE", "NFE / N", "solved", "solve rate", .. Levels.Select(l => $"{l} givens"), "mean wall time per search",
        ]);
        var bar = progress.Start("bench search (sudoku)", configs.Count * puzzles.Count);
        for (var c = 0; c < configs.Count; c++)
        {
            var (name, parameters, sampler, budget) = configs[c];
            var described = Describe(parameters) + (budget is { } times ? FormattableString.Invariant($", budget {times}N") : string.Empty);
            bar.Describe($"{name} {described} {Describe(sampler)}");
            using var gate = new SemaphoreSlim(concurrency);
            (int Level, bool Solved, CostAccount Cost)[] results;
            try
            {
                results = await RunConfigurationAsync().ConfigureAwait(false);
            }
            catch (InvalidRequestException ex)
            {
                // A configuration the engine refuses (several greedy roots would duplicate a trajectory) is reported as a
                // row; the others still run.
                bar.Advance(puzzles.Count);
                table.Add([name, described, Describe(sampler), $"refused: {ex.Message}", .. Enumerable.Repeat(string.Empty, 4 + Levels.Count)]);
                continue;
            }

            Task<(int Level, bool Solved, CostAccount Cost)[]> RunConfigurationAsync() => Task.WhenAll(puzzles.Select(async (puzzle, index) =>
            {
                await gate.WaitAsync(cancellationToken).ConfigureAwait(false);
                try
                {
                    var result = await engine.RunAsync(new SearchRequest
                    {
                        Model = model.Name,
                        Condition = puzzle.Puzzle,
                        Steps = n,
                        Seed = BenchSplits.FirstSeed(settings.Split) + (ulong)index,
                        Sampler = sampler,
                        Strategy = StrategyCatalog.BuiltIn.Create(name, parameters, n),
                        Verifiers = [Verifier(parameters)],
                        PreviewSteps = settings.PreviewSteps,
                        Budget = new SearchBudget { MaxNfe = budget * n },
                    }, cancellationToken).ConfigureAwait(false);
                    bar.Advance();
                    var solved = result.Candidates.Count > 0 && result.Candidates[0].Complete
                        && Sudoku.Check(result.Candidates[0].Sample, Sudoku.Parse(puzzle.Puzzle)).Solved;
                    return (puzzle.Level, Solved: solved, result.Cost);
                }
                finally
                {
                    gate.Release();
                }
            }));
            var meanNfe = results.Average(r => (double)r.Cost.Nfe);
            var solvedCount = results.Count(r => r.Solved);
            var perLevelRates = Levels.Select(l => results.Where(r => r.Level == l).ToList()).Select(g => g.Count == 0 ? "-" : FormattableString.Invariant($"{100.0 * g.Count(r => r.Solved) / g.Count:0}%"));
            table.Add([
                name, described, Describe(sampler), I($"{meanNfe:0.0}"), I($"{meanNfe / n:0.00}"), I($"{solvedCount}/{results.Length}"), I($"{100.0 * solvedCount / results.Length:0.0}%"),
                .. perLevelRates, I($"{results.Average(r => r.Cost.WallTime.TotalSeconds):0.00} s"),
            ]);
            outcomes.Add(new SudokuRow(name, described, Describe(sampler), meanNfe, meanNfe / n, solvedCount, results.Length));
        }

        bar.Finish();
        report.Table(table);
        report.Results("sudoku", new { settings.Split, Puzzles = puzzles.Count, Steps = n, Rows = outcomes });
    }

    /// <summary>
    /// The verifier a row searches with: <c>sudoku-conflicts</c> for DFS judging committed cells (blanks are undecided),
    /// otherwise <c>sudoku-constraints</c> (the two agree on the complete grids predictions and previews are).
    /// </summary>
    private static string Verifier(IReadOnlyDictionary<string, string> parameters) =>
        parameters.TryGetValue("judge", out var judge) && judge == "state" ? SudokuVerifier.ConflictsName : SudokuVerifier.VerifierName;

    private static string Describe(IReadOnlyDictionary<string, string> parameters) =>
        string.Join(", ", parameters.Select(p => $"{p.Key}={p.Value}"));

    private static string Describe(SamplerSettings sampler) =>
        FormattableString.Invariant($"T={sampler.Number(SamplerParameters.Temperature, 0)}")
        + (sampler.Number(SamplerParameters.TopK, 0) is > 0 and var k ? FormattableString.Invariant($", top_k {k}") : string.Empty)
        + (sampler.Number(SamplerParameters.TopP, 1) is > 0 and < 1 and var p ? FormattableString.Invariant($", top_p {p}") : string.Empty)
        + $", {sampler.Text(SamplerParameters.Policy, UnmaskingPolicyNames.Confidence)}, remask {sampler.Text(SamplerParameters.Remask, RemaskNames.Confidence)}";

    /// <summary>
    /// The single pass; every strategy at about 3–4× its NFE, drawing tokens at temperature 2; the forking and
    /// backtracking ones again with the single pass's greedy tokens and random re-masking; then a few larger budgets.
    /// </summary>
    private static List<Row> Configurations(int n)
    {
        string At(double fraction) => Math.Max(1, (int)(fraction * n)).ToString(CultureInfo.InvariantCulture);
        string Steps(params double[] fractions) => string.Join(',', fractions.Select(f => Math.Max(1, (int)(f * n)).ToString(CultureInfo.InvariantCulture)).Distinct());
        string Every(int steps) => string.Join(',', Enumerable.Range(1, steps - 1));
        // As many backtracks of recur_depth = fraction·N as keep the search within 4× one pass.
        string Backtracks(int steps, double fraction) => (3 * steps / Math.Max(1, (int)(fraction * steps))).ToString(CultureInfo.InvariantCulture);
        Dictionary<string, string> Escalating() => new() { ["evaluate_at"] = Every(n), ["threshold"] = "-0.5", ["recur_depth"] = At(0.0625), ["max_backtracks"] = (8 * n).ToString(CultureInfo.InvariantCulture), ["judge"] = "state", ["escalate"] = "true" };
        return
        [
            new(StrategyNames.BestOfN, new() { ["n"] = "1" }, Greedy),
            new(StrategyNames.BestOfN, new() { ["n"] = "1" }, Sampled),
            new(StrategyNames.BestOfN, new() { ["n"] = "4" }, Sampled),
            new(StrategyNames.SharedPrefix, new() { ["k"] = "4", ["fork_at"] = At(0.25) }, Sampled),
            new(StrategyNames.Bfs, new() { ["particles"] = "4", ["evaluate_at"] = Steps(0.25, 0.5, 0.75), ["mode"] = "prune", ["width"] = "1", ["preview_steps"] = "1" }, Sampled),
            new(StrategyNames.Dfs, new() { ["evaluate_at"] = $"{Steps(0.5, 0.75)},{n - 1}", ["threshold"] = "-0.5", ["recur_depth"] = At(0.25), ["max_backtracks"] = "8", ["preview_steps"] = "1" }, Sampled),
            new(StrategyNames.SearchOverPaths, new() { ["candidates"] = "1", ["continuations"] = "2", ["start_step"] = At(0.4), ["forward"] = At(0.15), ["backward"] = At(0.35), ["preview_steps"] = "1" }, Sampled),
            new(StrategyNames.ZeroOrder, new() { ["neighbours"] = "3", ["similarity"] = "0.9", ["iterations"] = "1" }, Sampled),
            new(StrategyNames.FkSteering, new() { ["particles"] = "4", ["potential"] = "max", ["lambda"] = "2", ["resample_every"] = At(0.25) }, Sampled),
            new(StrategyNames.SharedPrefix, new() { ["k"] = "4", ["fork_at"] = At(0.25) }, GreedyRandomRemask),
            new(StrategyNames.Dfs, new() { ["evaluate_at"] = $"{Steps(0.5, 0.75)},{n - 1}", ["threshold"] = "-0.5", ["recur_depth"] = At(0.25), ["max_backtracks"] = "8", ["preview_steps"] = "1" }, GreedyRandomRemask),
            new(StrategyNames.SearchOverPaths, new() { ["candidates"] = "1", ["continuations"] = "2", ["start_step"] = At(0.4), ["forward"] = At(0.15), ["backward"] = At(0.35), ["preview_steps"] = "1" }, GreedyRandomRemask),
            // Lookahead: nodes judged by the violations of their greedy fill-in (a preview of 4 steps), within 4×.
            new(StrategyNames.Dfs, new() { ["evaluate_at"] = Steps(0.25, 0.5, 0.75), ["threshold"] = "-0.5", ["recur_depth"] = At(0.25), ["max_backtracks"] = "4", ["preview_steps"] = "4" }, GreedyRandomRemask),
            new(StrategyNames.SearchOverPaths, new() { ["candidates"] = "1", ["continuations"] = "2", ["start_step"] = At(0.4), ["forward"] = At(0.15), ["backward"] = At(0.35), ["preview_steps"] = "4" }, GreedyRandomRemask),
            new(StrategyNames.Bfs, new() { ["particles"] = "2", ["evaluate_at"] = Steps(0.25, 0.5, 0.75), ["mode"] = "prune", ["width"] = "1", ["preview_steps"] = "4" }, Sampled),
            // Constraint backtracking: every step judges the committed cells (no NFE) and backtracks as soon as one breaks a
            // constraint, which no later step can repair; within 4× (N + 24 backtracks of N/8 steps).
            new(StrategyNames.Dfs, new() { ["evaluate_at"] = Every(n), ["threshold"] = "-0.5", ["recur_depth"] = At(0.125), ["max_backtracks"] = Backtracks(n, 0.125), ["judge"] = "state" }, GreedyRandomRemask),
            new(StrategyNames.Dfs, new() { ["evaluate_at"] = Every(n), ["threshold"] = "-0.5", ["recur_depth"] = At(0.125), ["max_backtracks"] = Backtracks(n, 0.125), ["judge"] = "state" }, Greedy.With(SamplerParameters.Temperature, 1.0)),
            new(StrategyNames.Dfs, new() { ["evaluate_at"] = Every(n), ["threshold"] = "-0.5", ["recur_depth"] = At(0.25), ["max_backtracks"] = Backtracks(n, 0.25), ["judge"] = "state" }, Sampled),
            // Escalating constraint backtracking: each retry at a step that does no better goes back twice as far (from one
            // step), within a budget that every backtrack leaves the finish room for: 4× one pass (no search spends more),
            // 6× and 8× (a mean within 4×); tokens at T = 1.25, chosen on the tuning split.
            new(StrategyNames.Dfs, Escalating(), GreedyRandomRemask, 4),
            new(StrategyNames.Dfs, Escalating(), Greedy.With(SamplerParameters.Temperature, 1.25), 4),
            new(StrategyNames.Dfs, Escalating(), Greedy.With(SamplerParameters.Temperature, 1.25), 6),
            new(StrategyNames.Dfs, Escalating(), Greedy.With(SamplerParameters.Temperature, 1.25), 8),
            new(StrategyNames.SharedPrefix, new() { ["k"] = "2", ["fork_at"] = At(0.25) }, GreedyRandomRemask),
            new(StrategyNames.SharedPrefix, new() { ["k"] = "8", ["fork_at"] = At(0.25) }, GreedyRandomRemask),
            new(StrategyNames.BestOfN, new() { ["n"] = "8" }, Sampled),
        ];
    }

    /// <summary>
    /// A <c>--row</c>: <c>sampler.temperature</c>, <c>sampler.top_k</c>, <c>sampler.top_p</c>, <c>sampler.threshold</c> (numbers) and
    /// <c>sampler.policy</c>, <c>sampler.remask</c> (names) change the single pass's greedy sampler; <c>budget</c> is the
    /// most NFE in multiples of N; every other pair is the strategy's.
    /// </summary>
    /// <exception cref="InvalidRequestException">A sampler key is unknown, or a number or the budget does not parse.</exception>
    internal static Row FromRow(SearchConfiguration row)
    {
        const string Prefix = "sampler.";
        string[] numbers = [SamplerParameters.Temperature, SamplerParameters.TopK, SamplerParameters.TopP, SamplerParameters.Threshold];
        string[] names = [SamplerParameters.Policy, SamplerParameters.Remask];
        var sampler = Greedy;
        int? budget = null;
        var parameters = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (key, value) in row.Parameters)
        {
            if (key == "budget")
            {
                budget = int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var times) && times > 0
                    ? times
                    : throw new InvalidRequestException("row", $"--row {row.Name}: budget must be a positive whole multiple of N, got {CallerInput.Quote(value)}.");
            }
            else if (!key.StartsWith(Prefix, StringComparison.Ordinal))
            {
                parameters[key] = value;
            }
            else if (numbers.Contains(key[Prefix.Length..]))
            {
                sampler = double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var number)
                    ? sampler.With(key[Prefix.Length..], number)
                    : throw new InvalidRequestException("row", $"--row {row.Name}: {key} must be a number, got {CallerInput.Quote(value)}.");
            }
            else
            {
                sampler = names.Contains(key[Prefix.Length..])
                    ? sampler.With(key[Prefix.Length..], value)
                    : throw new InvalidRequestException("row", $"--row {row.Name}: unknown sampler key {CallerInput.Quote(key)}; use one of: {string.Join(", ", numbers.Concat(names).Select(k => Prefix + k))}.");
            }
        }

        return new Row(row.Name, parameters, sampler, budget);
    }

    private static string I(FormattableString text) => FormattableString.Invariant(text);

    /// <summary>One row's result: its strategy, parameters and sampler as the table shows them, mean NFE, and puzzles solved of those run.</summary>
    private sealed record SudokuRow(string Strategy, string Parameters, string Sampler, double MeanNfe, double NfeOverN, int Solved, int Puzzles);

    /// <summary>One row of the table: a strategy, its parameters and sampler, and a budget in multiples of N (none when null).</summary>
    internal sealed record Row(string Name, Dictionary<string, string> Parameters, SamplerSettings Sampler, int? Budget = null);
}
