using System.Diagnostics;
using System.Globalization;
using SearchOrchestrator.Scheduling;
using SearchOrchestrator.Search;
using SearchOrchestrator.Strategies;

namespace SearchOrchestrator.Bench;

/// <summary>The task and strategies of <c>bench search</c>.</summary>
internal sealed record SearchSettings
{
    public required string Model { get; init; }

    public required string Verifier { get; init; }

    public required int Seeds { get; init; }

    public required int Steps { get; init; }

    public required double Guidance { get; init; }

    public required double Eta { get; init; }

    /// <summary>Run only these strategies (null: all).</summary>
    public IReadOnlyList<string>? Strategies { get; init; }

    /// <summary>The rows to run instead of the built-in list, each a strategy and its parameters (null: the built-in list).</summary>
    public IReadOnlyList<SearchConfiguration>? Rows { get; init; }

    /// <summary>Which seeds (and Sudoku puzzles) to run: the tuning split, or the held-out split nothing was tuned on.</summary>
    public BenchSplit Split { get; init; } = BenchSplit.Tuning;

    /// <summary>The requests' preview steps j (strategies that set none take it; 1 = raw x0-predictions); null: each strategy's own default.</summary>
    public int? PreviewSteps { get; init; }

    /// <summary>Searches in flight at once (their steps share batches).</summary>
    public required int Concurrency { get; init; }

    /// <summary>Include <c>fork_at: auto</c> (its one-off calibration is most of a quick run's cost).</summary>
    public required bool IncludeAuto { get; init; }

    /// <summary>Measure where the count is decided (the calibration curve) at the end.</summary>
    public required bool CommitmentCurve { get; init; }

    public void Validate()
    {
        if (Seeds < 1)
        {
            throw new InvalidRequestException("seeds", $"--seeds must be at least 1, got {Seeds}.");
        }

        if (Concurrency < 1)
        {
            throw new InvalidRequestException("concurrency", $"--concurrency must be at least 1, got {Concurrency}.");
        }

        if (PreviewSteps is < 1)
        {
            throw new InvalidRequestException("preview-steps", $"--preview-steps must be at least 1, got {PreviewSteps}.");
        }
    }
}

/// <summary>
/// The seeds of <c>bench search</c>, split before any tuning: strategy defaults are tuned on <see cref="Tuning"/> only
/// and reported on <see cref="HeldOut"/> too.
/// </summary>
internal enum BenchSplit
{
    /// <summary>Seeds 1 … S per condition; Sudoku puzzles from generator seed 20261124 (the ones measured before the split).</summary>
    Tuning,

    /// <summary>Seeds 1,000,001 … 1,000,000 + S per condition; Sudoku puzzles from generator seed 20261201.</summary>
    HeldOut,
}

/// <summary>Where each split's seeds start.</summary>
internal static class BenchSplits
{
    /// <summary>The first request seed of <paramref name="split"/>.</summary>
    public static ulong FirstSeed(BenchSplit split) => split == BenchSplit.HeldOut ? 1_000_001UL : 1UL;

    /// <summary>The generator seed of <paramref name="split"/>'s Sudoku puzzles.</summary>
    public static int PuzzleSeed(BenchSplit split) => split == BenchSplit.HeldOut ? 20261201 : 20261124;
}

/// <summary>A strategy and its parameters, as <c>searchorch strategies</c> lists them: one row of <c>bench search</c>.</summary>
internal sealed record SearchConfiguration(string Name, Dictionary<string, string> Parameters)
{
    /// <summary>Parses <c>--row</c>: the strategy's name, then <c>key=value</c> pairs separated by spaces.</summary>
    /// <exception cref="InvalidRequestException">The text is empty or a pair has no <c>=</c>.</exception>
    public static SearchConfiguration Parse(string text)
    {
        var words = text.Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (words.Length == 0)
        {
            throw new InvalidRequestException("row", "--row must be '<strategy> key=value …', got an empty row.");
        }

        var parameters = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var pair in words.Skip(1))
        {
            var split = pair.IndexOf('=', StringComparison.Ordinal);
            if (split <= 0 || !parameters.TryAdd(pair[..split], pair[(split + 1)..]))
            {
                throw new InvalidRequestException("row", $"--row must be '<strategy> key=value …' with each key once, got '{pair}' in '{text}'.");
            }
        }

        return new(words[0], parameters);
    }
}

/// <summary>One strategy configuration of <c>bench search</c>, over every condition and seed.</summary>
internal sealed record SearchRow(string Strategy, string Series, string Parameters, double MeanNfe, double NfeOverN, double MeanEncoderCalls, double MeanDecoderCalls, double Accuracy, double MeanWallSeconds, int BudgetLimited, int Searches);

/// <summary>
/// <c>searchorch bench search</c>: every strategy on the counting task, the returned image judged by the programmatic
/// counter (not by the verifier the search used); accuracy against NFE, one line per strategy.
/// </summary>
internal static class SearchBench
{
    public static async Task<IReadOnlyList<SearchRow>> RunAsync(BenchContext context, SearchSettings settings, CancellationToken cancellationToken)
    {
        settings.Validate();
        var n = settings.Steps;
        await using var engine = new SearchEngine(context.Models, new BatchingOptions { MaxBatchSize = 128 });
        var stages = context.Models.GetStages(settings.Model);
        var description = stages?.Description ?? context.Models.GetDenoiser(settings.Model).Description;
        if (description.Process is Processes.MaskedProcess)
        {
            // Token models are judged by solving puzzles, not by counting: the Sudoku bench writes its own table.
            await SudokuBench.RunAsync(engine, description, settings, context.Report, context.Progress, cancellationToken).ConfigureAwait(false);
            return [];
        }

        // A text-to-image pipeline is asked for prompts and judged by the compositional judge; a class-conditioned model
        // for each of its labels, judged by the object counter.
        var conditions = context.Conditions(settings.Model);
        SearchRequest For(string condition, SearchRequest request) => BenchContext.For(request, condition, stages is not null);
        var template = For(conditions[0], new SearchRequest
        {
            Model = description.Name,
            Condition = string.Empty,
            Steps = n,
            Guidance = settings.Guidance,
            Eta = settings.Eta,
            Strategy = new BestOfNStrategy(1),
            Verifiers = [settings.Verifier],
            PreviewSteps = settings.PreviewSteps,
        });
        engine.Validate(template);
        var configs = (settings.Rows ?? Configurations(n))
            .Where(c => settings.Strategies is null || settings.Strategies.Contains(c.Name))
            .Where(c => settings.IncludeAuto || c.Name != StrategyNames.SharedPrefix || c.Parameters.ContainsKey("fork_at"))
            .ToList();
        if (configs.Count == 0)
        {
            throw new InvalidRequestException("strategies", $"--strategies names none of: {string.Join(", ", StrategyNames.All)}.");
        }

        foreach (var (name, parameters) in configs)
        {
            StrategyCatalog.BuiltIn.Create(name, parameters, n).Validate(n); // a bad row fails before the first search
        }

        var first = BenchSplits.FirstSeed(settings.Split);
        var jobs = conditions.SelectMany(condition => Enumerable.Range(0, settings.Seeds).Select(seed => (condition, seed: first + (ulong)seed))).ToList();
        var bar = context.Progress.Start("bench search", configs.Count * jobs.Count);
        var rows = new List<SearchRow>();
        var forkSteps = new List<int>();
        long calibration = 0;
        foreach (var (name, parameters) in configs)
        {
            bar.Describe($"{name} {Describe(parameters)}");
            using var gate = new SemaphoreSlim(settings.Concurrency);
            var results = await Task.WhenAll(jobs.Select(async job =>
            {
                await gate.WaitAsync(cancellationToken).ConfigureAwait(false);
                try
                {
                    var started = Stopwatch.GetTimestamp();
                    var result = await engine.RunAsync(For(job.condition, template) with
                    {
                        Seed = job.seed,
                        Strategy = StrategyCatalog.BuiltIn.Create(name, parameters, n),
                    }, cancellationToken).ConfigureAwait(false);
                    bar.Advance();
                    return (job.condition, result, wall: Stopwatch.GetElapsedTime(started).TotalSeconds);
                }
                finally
                {
                    gate.Release();
                }
            })).ConfigureAwait(false);

            var meanNfe = results.Average(r => (double)r.result.Cost.Nfe);
            calibration += results.Sum(r => r.result.Cost.CalibrationNfe);
            if (name == StrategyNames.SharedPrefix && !parameters.ContainsKey("fork_at"))
            {
                forkSteps.AddRange(results.Select(r => r.result.ForkStep ?? 0));
            }

            rows.Add(new SearchRow(
                name,
                SeriesOf(name, parameters),
                Describe(parameters),
                meanNfe,
                meanNfe / n,
                results.Average(r => (double)r.result.Cost.EncoderCalls),
                results.Average(r => (double)r.result.Cost.DecoderCalls),
                results.Count(r => context.IsCorrect(r.result, For(r.condition, template))) / (double)results.Length,
                results.Average(r => r.wall),
                results.Count(r => r.result.BudgetLimited),
                results.Length));
        }

        bar.Finish();
        Render(context.Report, settings, conditions.Count, stages is null ? "the programmatic counter's" : "the compositional judge's", rows);
        if (forkSteps.Count > 0)
        {
            context.Report.Paragraph($"fork_at: auto chose steps {string.Join(", ", forkSteps.Distinct().Order())} (per condition). Its mean NFE above is the searches' own; the one-off calibration, cached per model and condition, cost {calibration} NFE in all ({calibration / conditions.Count} per condition).");
        }

        object? curve = null;
        if (settings.CommitmentCurve && stages is null)
        {
            curve = await CommitmentAsync(context, engine, template, conditions, cancellationToken).ConfigureAwait(false);
        }

        context.Report.Results("search", new { settings, rows, autoForkSteps = forkSteps, calibrationNfe = calibration, commitment = curve });
        return rows;
    }

    private static void Render(BenchReport report, SearchSettings settings, int conditions, string judge, List<SearchRow> rows)
    {
        report.Heading("Search quality per compute");
        report.Paragraph(FormattableString.Invariant(
            $"{settings.Model}, {conditions} conditions × {settings.Seeds} seeds of the {(settings.Split == BenchSplit.HeldOut ? "held-out" : "tuning")} split (from seed {BenchSplits.FirstSeed(settings.Split)}), N = {settings.Steps}, guidance {settings.Guidance}, η {settings.Eta}, {(settings.PreviewSteps is { } j ? $"preview steps {j}" : "each strategy's default preview steps")} unless a row sets its own; searches score with `{settings.Verifier}`, accuracy is {judge} verdict on the returned image. {settings.Concurrency} searches in flight share batches, so wall times compare with each other, not with a lone search."));
        var table = new MarkdownTable("strategy", "parameters", "mean NFE", "NFE / N", "encoder calls", "decoder calls", "accuracy", "mean wall time per search", "budget-limited");
        foreach (var r in rows)
        {
            table.Add(r.Strategy, r.Parameters, I($"{r.MeanNfe:0}"), I($"{r.NfeOverN:0.00}"), I($"{r.MeanEncoderCalls:0.##}"), I($"{r.MeanDecoderCalls:0.##}"), I($"{r.Accuracy:P1}"), I($"{r.MeanWallSeconds:0.00} s"), I($"{r.BudgetLimited}"));
        }

        report.Table(table);
        var series = rows.GroupBy(r => r.Series)
            .Select(g => g.OrderBy(r => r.MeanNfe).ToList())
            .Select(g => new PlotSeries(g[0].Series, [.. g.Select(r => r.MeanNfe)], [.. g.Select(r => 100 * r.Accuracy)]))
            .ToList();
        report.Plot("search-accuracy.png", "accuracy against NFE per strategy", BenchPlots.Lines(
            $"accuracy ({judge.Replace("'s", string.Empty, StringComparison.Ordinal)}) against NFE, N = {settings.Steps}",
            "mean NFE per search",
            "accuracy (%)",
            series,
            yMin: -2, // so a strategy at 0% is not hidden by the axis
            yMax: 102));
    }

    /// <summary>Where the count is decided: the mean spread of sibling verifier scores against the fork step.</summary>
    private static async Task<object> CommitmentAsync(BenchContext context, SearchEngine engine, SearchRequest template, IReadOnlyList<string> conditions, CancellationToken cancellationToken)
    {
        var bar = context.Progress.Start("fork-step curve", conditions.Count);
        var curves = await Task.WhenAll(conditions.Select(async c =>
        {
            var curve = await engine.Calibration.MeasureAsync(template with { Condition = c }, cancellationToken).ConfigureAwait(false);
            bar.Advance();
            return curve;
        })).ConfigureAwait(false);
        bar.Finish();
        context.Report.Paragraph($"Where the count is decided: for {engine.Calibration.Siblings} siblings forked at step s ({engine.Calibration.Probes} probes per condition, every condition), the mean of (best − mean) of their verifier scores, i.e. what picking the best sibling gains; s = 0 is independent samples.");
        var table = new MarkdownTable("s", "s/N", "best-of-siblings gain", "share of independent");
        var independent = curves.Average(c => c.Gain[0].Gain);
        var points = new List<object>();
        for (var g = 0; g < curves[0].Gain.Count; g++)
        {
            var step = curves[0].Gain[g].Step;
            var gain = curves.Average(c => c.Gain[g].Gain);
            points.Add(new { step, gain, share = gain / independent });
            table.Add(I($"{step}"), I($"{(double)step / template.Steps:0.0}"), I($"{gain:0.000}"), I($"{gain / independent:P0}"));
        }

        context.Report.Table(table);
        return points;
    }

    private static string Describe(IReadOnlyDictionary<string, string> parameters) =>
        string.Join(", ", parameters.Select(p => $"{p.Key}={p.Value}"));

    /// <summary>The line a configuration belongs to on the plot: its strategy, and BFS's mode, which changes the algorithm.</summary>
    private static string SeriesOf(string name, IReadOnlyDictionary<string, string> parameters) => name switch
    {
        StrategyNames.Bfs => $"bfs ({parameters.GetValueOrDefault("mode", "resample")})",
        StrategyNames.SharedPrefix when !parameters.ContainsKey("fork_at") => "shared_prefix (auto)",
        _ => name,
    };

    /// <summary>The strategies compared, at about 4× and 8× the compute of one trajectory.</summary>
    private static List<SearchConfiguration> Configurations(int n)
    {
        string Steps(params double[] fractions) => string.Join(',', fractions.Select(f => ((int)(f * n)).ToString(CultureInfo.InvariantCulture)));
        string At(double fraction) => ((int)(fraction * n)).ToString(CultureInfo.InvariantCulture);
        return
        [
            new(StrategyNames.BestOfN, new() { ["n"] = "1" }),
            new(StrategyNames.BestOfN, new() { ["n"] = "4" }),
            new(StrategyNames.SharedPrefix, new() { ["k"] = "4", ["fork_at"] = At(0.2) }),
            new(StrategyNames.SharedPrefix, new() { ["k"] = "4", ["fork_at"] = At(0.5) }),
            new(StrategyNames.SharedPrefix, new() { ["k"] = "4", ["fork_at"] = At(0.8) }),
            new(StrategyNames.SharedPrefix, new() { ["k"] = "4" }),
            new(StrategyNames.Bfs, new() { ["particles"] = "4", ["evaluate_at"] = Steps(0.4, 0.6, 0.8), ["temperature"] = "0.1", ["preview_steps"] = "1" }),
            new(StrategyNames.Bfs, new() { ["particles"] = "4", ["evaluate_at"] = Steps(0.4, 0.6, 0.8), ["mode"] = "prune", ["width"] = "2", ["preview_steps"] = "1" }),
            new(StrategyNames.Dfs, new() { ["evaluate_at"] = Steps(0.4, 0.6, 0.8), ["threshold"] = "0.5", ["recur_depth"] = At(0.1), ["max_backtracks"] = "15", ["preview_steps"] = "1" }),
            new(StrategyNames.SearchOverPaths, new() { ["candidates"] = "1", ["continuations"] = "3", ["start_step"] = At(0.4), ["forward"] = At(0.1), ["backward"] = At(0.2), ["preview_steps"] = "1" }),
            new(StrategyNames.ZeroOrder, new() { ["neighbours"] = "3", ["similarity"] = "0.9", ["iterations"] = "1" }),
            new(StrategyNames.FkSteering, new() { ["particles"] = "4", ["potential"] = "max", ["lambda"] = "10", ["resample_every"] = At(0.2) }),

            // Lookahead: mid-trajectory nodes scored on previews of a few deterministic steps, whose NFE counts (about 4×);
            // the bfs, dfs, search_over_paths and (raw) fk_steering rows here are those strategies' tuned defaults (BENCHMARKS.md 3b).
            new(StrategyNames.Bfs, new() { ["particles"] = "3", ["evaluate_at"] = Steps(0.2, 0.4, 0.6, 0.8), ["temperature"] = "0.1", ["preview_steps"] = "3" }),
            new(StrategyNames.Bfs, new() { ["particles"] = "3", ["evaluate_at"] = Steps(0.2, 0.4, 0.6, 0.8), ["mode"] = "prune", ["width"] = "1", ["preview_steps"] = "3" }),
            new(StrategyNames.FkSteering, new() { ["particles"] = "3", ["potential"] = "max", ["lambda"] = "10", ["resample_every"] = At(0.2), ["preview_steps"] = "3" }),
            new(StrategyNames.Dfs, new() { ["evaluate_at"] = Steps(0.2, 0.4, 0.6, 0.8), ["threshold"] = "0.5", ["recur_depth"] = At(0.1), ["max_backtracks"] = "15", ["preview_steps"] = "3" }),
            new(StrategyNames.SearchOverPaths, new() { ["candidates"] = "1", ["continuations"] = "3", ["start_step"] = At(0.5), ["forward"] = At(0.1), ["backward"] = At(0.2), ["preview_steps"] = "2" }),
            new(StrategyNames.FkSteering, new() { ["particles"] = "4", ["potential"] = "immediate", ["lambda"] = "10", ["resample_every"] = At(0.2) }),
            new(StrategyNames.BestOfN, new() { ["n"] = "8" }),
            new(StrategyNames.Bfs, new() { ["particles"] = "8", ["evaluate_at"] = Steps(0.4, 0.6, 0.8), ["temperature"] = "0.1", ["preview_steps"] = "1" }),
            new(StrategyNames.FkSteering, new() { ["particles"] = "8", ["potential"] = "max", ["lambda"] = "10", ["resample_every"] = At(0.2) }),
        ];
    }

    private static string I(FormattableString value) => FormattableString.Invariant(value);
}
