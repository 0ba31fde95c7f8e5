using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using SearchOrchestrator.Scheduling;
using SearchOrchestrator.Search;
using SearchOrchestrator.Strategies;
using SearchOrchestrator.Verifiers;

namespace SearchOrchestrator.Cli.Commands;

/// <summary><c>searchorch bench</c>: measurements made in one run, printed as tables (never asserted in tests).</summary>
internal static class BenchCommand
{
    public static Command Create()
    {
        var command = new Command("bench", "Measure search quality per compute, side by side in one run.");
        command.Subcommands.Add(CreateSearch());
        command.Subcommands.Add(ServeBench.Create());
        command.Subcommands.Add(WorkersBench.CreateLinks());
        command.Subcommands.Add(WorkersBench.CreateWorkers());
        return command;
    }

    private static Command CreateSearch()
    {
        var common = new CommonOptions();
        var model = new Option<string>("--model") { Description = "The denoiser.", DefaultValueFactory = _ => "counting" };
        var verifier = new Option<string>("--verifier") { Description = "The verifier searches score with.", DefaultValueFactory = _ => "count-verifier" };
        var seeds = new Option<int>("--seeds") { Description = "Seeds per condition.", DefaultValueFactory = _ => 20 };
        var steps = new Option<int>("--steps") { Description = "Sampling steps N.", DefaultValueFactory = _ => 50 };
        var guidance = new Option<double>("--guidance") { Description = "Classifier-free guidance scale.", DefaultValueFactory = _ => 2.0 };
        var eta = new Option<double>("--eta") { Description = "DDIM η for every strategy.", DefaultValueFactory = _ => 0.5 };
        var quick = new Option<bool>("--quick") { Description = "A smoke run: 3 seeds per condition and no calibration curve." };
        var only = new Option<string?>("--strategies") { Description = "Run only these strategies (comma-separated names)." };
        var concurrency = new Option<int>("--concurrency") { Description = "Searches in flight at once (their steps share batches).", DefaultValueFactory = _ => 24 };
        var command = new Command("search", "Accuracy (judged by the programmatic counter) against NFE for every strategy on the counting task.")
        {
            model, verifier, seeds, steps, guidance, eta, quick, only, concurrency,
        };
        common.AddTo(command);
        command.SetAction((parse, cancellationToken) => CommandErrors.RunAsync(async () =>
        {
            var n = parse.GetValue(steps);
            var seedCount = parse.GetValue(quick) ? 3 : parse.GetValue(seeds);
            using var repository = common.LoadRepository(parse);
            await using var engine = new SearchEngine(common.CreateCatalog(parse, repository), new BatchingOptions { MaxBatchSize = 128 });
            var denoiser = repository.GetDenoiser(parse.GetValue(model)!);
            if (denoiser.Description.Process is Processes.MaskedProcess)
            {
                return await SudokuBench.RunAsync(engine, denoiser.Description, parse.GetValue(quick) ? 3 : parse.GetValue(seeds), n, parse.GetValue(only)?.Split(','), parse.GetValue(concurrency), cancellationToken).ConfigureAwait(false);
            }

            var conditions = denoiser.Description.Conditions.Labels;
            var template = new SearchRequest
            {
                Model = denoiser.Description.Name,
                Condition = conditions[0],
                Steps = n,
                Guidance = parse.GetValue(guidance),
                Eta = parse.GetValue(eta),
                Strategy = new BestOfNStrategy(1),
                Verifiers = [parse.GetValue(verifier)!],
            };
            engine.Validate(template);
            var selected = parse.GetValue(only)?.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
            var configs = Configurations(n).Where(c => selected is null || selected.Contains(c.Name)).ToList();
            if (configs.Count == 0)
            {
                throw new InvalidRequestException("strategies", $"--strategies names none of: {string.Join(", ", StrategyNames.All)}.");
            }
            Console.WriteLine($"bench search: {template.Model}, {conditions.Count} conditions x {seedCount} seeds, N = {n}, guidance {template.Guidance}, eta {template.Eta}, verifier {template.Verifiers[0]}; accuracy judged by the programmatic counter; {Environment.ProcessorCount} cores, {repository.ExecutionProvider}");
            Console.WriteLine();
            Console.WriteLine("| strategy | parameters | mean NFE | NFE / N | accuracy | mean wall time per search | budget-limited |");
            Console.WriteLine("|---|---|---|---|---|---|---|");
            var counter = new ObjectCounter();
            var forkSteps = new List<int>();
            long calibration = 0;
            for (var c = 0; c < configs.Count; c++)
            {
                var (name, parameters) = configs[c];
                var clock = Stopwatch.StartNew();
                using var gate = new SemaphoreSlim(parse.GetValue(concurrency));
                var jobs = conditions.SelectMany(condition => Enumerable.Range(1, seedCount).Select(seed => (condition, seed: (ulong)seed))).ToList();
                var done = 0;
                var results = await Task.WhenAll(jobs.Select(async job =>
                {
                    await gate.WaitAsync(cancellationToken).ConfigureAwait(false);
                    try
                    {
                        var result = await engine.RunAsync(template with
                        {
                            Condition = job.condition,
                            Seed = job.seed,
                            Strategy = StrategyCatalog.Create(name, parameters, n),
                        }, cancellationToken).ConfigureAwait(false);
                        var finished = Interlocked.Increment(ref done);
                        Console.Error.Write($"\r[{c + 1}/{configs.Count}] {name,-18} {finished}/{jobs.Count} searches, {clock.Elapsed.TotalSeconds:0}s   ");
                        return (job.condition, result);
                    }
                    finally
                    {
                        gate.Release();
                    }
                })).ConfigureAwait(false);
                Console.Error.WriteLine();

                var exact = results.Count(r => counter.Count(r.result.Candidates[0].Sample, r.result.Candidates[0].Shape).ToString(CultureInfo.InvariantCulture) == r.condition);
                var meanNfe = results.Average(r => (double)r.result.Cost.Nfe);
                calibration += results.Sum(r => r.result.Cost.CalibrationNfe);
                forkSteps.AddRange(name == StrategyNames.SharedPrefix && !parameters.ContainsKey("fork_at") ? results.Select(r => r.result.ForkStep ?? 0) : []);
                Console.WriteLine(FormattableString.Invariant(
                    $"| {name} | {Describe(parameters)} | {meanNfe:0} | {meanNfe / n:0.00} | {100.0 * exact / results.Length:0.0}% | {results.Average(r => r.result.Cost.WallTime.TotalSeconds):0.00} s | {results.Count(r => r.result.BudgetLimited)} |"));
            }

            if (forkSteps.Count > 0)
            {
                Console.WriteLine();
                Console.WriteLine($"fork_at: auto chose steps {string.Join(", ", forkSteps.Distinct().Order())} (per condition). Its mean NFE above is the searches' own; the one-off calibration, cached per model and condition, cost {calibration} NFE in all ({calibration / conditions.Count} per condition).");
            }

            if (!parse.GetValue(quick))
            {
                await PrintCommitmentAsync(engine, template, conditions, cancellationToken).ConfigureAwait(false);
            }

            return 0;
        }));
        return command;
    }

    /// <summary>Where the count is decided: the mean spread of sibling verifier scores against the fork step.</summary>
    private static async Task PrintCommitmentAsync(SearchEngine engine, SearchRequest template, IReadOnlyList<string> conditions, CancellationToken cancellationToken)
    {
        Console.Error.WriteLine("measuring the best-of-siblings gain per fork step ...");
        var curves = await Task.WhenAll(conditions.Select(c => engine.Calibration.MeasureAsync(template with { Condition = c }, cancellationToken))).ConfigureAwait(false);
        Console.WriteLine();
        Console.WriteLine($"Where the count is decided: for {engine.Calibration.Siblings} siblings forked at step s ({engine.Calibration.Probes} probes per condition, every condition), the mean of (best − mean) of their verifier scores, i.e. what picking the best sibling gains; s = 0 is independent samples.");
        Console.WriteLine();
        Console.WriteLine($"| s | s/N | best-of-siblings gain | share of independent |");
        Console.WriteLine("|---|---|---|---|");
        var independent = curves.Average(c => c.Gain[0].Gain);
        for (var g = 0; g < curves[0].Gain.Count; g++)
        {
            var step = curves[0].Gain[g].Step;
            var gain = curves.Average(c => c.Gain[g].Gain);
            Console.WriteLine(FormattableString.Invariant($"| {step} | {(double)step / template.Steps:0.0} | {gain:0.000} | {gain / independent:P0} |"));
        }
    }

    private static string Describe(IReadOnlyDictionary<string, string> parameters) =>
        string.Join(", ", parameters.Select(p => $"{p.Key}={p.Value}"));

    /// <summary>The strategies compared, at about 4× and 8× the compute of one trajectory.</summary>
    private static List<(string Name, Dictionary<string, string> Parameters)> Configurations(int n)
    {
        string Steps(params double[] fractions) => string.Join(',', fractions.Select(f => ((int)(f * n)).ToString(CultureInfo.InvariantCulture)));
        string At(double fraction) => ((int)(fraction * n)).ToString(CultureInfo.InvariantCulture);
        return
        [
            (StrategyNames.BestOfN, new() { ["n"] = "1" }),
            (StrategyNames.BestOfN, new() { ["n"] = "4" }),
            (StrategyNames.SharedPrefix, new() { ["k"] = "4", ["fork_at"] = At(0.2) }),
            (StrategyNames.SharedPrefix, new() { ["k"] = "4", ["fork_at"] = At(0.5) }),
            (StrategyNames.SharedPrefix, new() { ["k"] = "4", ["fork_at"] = At(0.8) }),
            (StrategyNames.SharedPrefix, new() { ["k"] = "4" }),
            (StrategyNames.Bfs, new() { ["particles"] = "4", ["evaluate_at"] = Steps(0.4, 0.6, 0.8), ["temperature"] = "0.1" }),
            (StrategyNames.Bfs, new() { ["particles"] = "4", ["evaluate_at"] = Steps(0.4, 0.6, 0.8), ["mode"] = "prune", ["width"] = "2" }),
            (StrategyNames.Dfs, new() { ["evaluate_at"] = Steps(0.4, 0.6, 0.8), ["threshold"] = "0.5", ["recur_depth"] = At(0.1), ["max_backtracks"] = "15" }),
            (StrategyNames.SearchOverPaths, new() { ["candidates"] = "1", ["continuations"] = "3", ["start_step"] = At(0.4), ["forward"] = At(0.1), ["backward"] = At(0.2) }),
            (StrategyNames.ZeroOrder, new() { ["neighbours"] = "3", ["similarity"] = "0.9", ["iterations"] = "1" }),
            (StrategyNames.FkSteering, new() { ["particles"] = "4", ["potential"] = "max", ["lambda"] = "10", ["resample_every"] = At(0.2) }),
            (StrategyNames.BestOfN, new() { ["n"] = "8" }),
            (StrategyNames.Bfs, new() { ["particles"] = "8", ["evaluate_at"] = Steps(0.4, 0.6, 0.8), ["temperature"] = "0.1" }),
            (StrategyNames.FkSteering, new() { ["particles"] = "8", ["potential"] = "max", ["lambda"] = "10", ["resample_every"] = At(0.2) }),
        ];
    }
}
