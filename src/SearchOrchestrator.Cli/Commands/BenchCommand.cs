using System.CommandLine;
using System.Globalization;
using SearchOrchestrator.Bench;

namespace SearchOrchestrator.Cli.Commands;

/// <summary>
/// <c>searchorch bench</c>: measurements made side by side in one run, each run written to
/// <c>bench-results/&lt;timestamp&gt;/</c> (report.md, results.json, PNG plots); never asserted in tests.
/// </summary>
internal static class BenchCommand
{
    public static Command Create()
    {
        var command = new Command("bench", "Measure what sharing saves, how close the engine gets to the hardware, and what search buys per NFE; each run writes bench-results/<timestamp>/.");
        command.Subcommands.Add(CreateSharing());
        command.Subcommands.Add(CreateEngine());
        command.Subcommands.Add(CreateSearch());
        command.Subcommands.Add(CreateServe());
        command.Subcommands.Add(CreateAll());
        command.Subcommands.Add(CreateLinks());
        command.Subcommands.Add(CreateWorkers());
        return command;
    }

    /// <summary>The options every bench takes: where to write, how much to print, how long to run.</summary>
    private sealed class BenchOptions
    {
        public CommonOptions Common { get; } = new();

        public Option<string> Out { get; } = new("--out") { Description = "The folder each run's <timestamp>/ report folder goes in.", DefaultValueFactory = _ => "bench-results" };

        public Option<bool> Quiet { get; } = new("--quiet", "-q") { Description = "No progress bars and no tables on the console: print only the report's path." };

        public Option<bool> Quick { get; } = new("--quick") { Description = "A smoke run: fewer seeds, shorter windows." };

        public void AddTo(Command command)
        {
            Common.AddTo(command);
            command.Options.Add(Out);
            command.Options.Add(Quiet);
            command.Options.Add(Quick);
        }

        /// <summary>Loads the models, runs <paramref name="body"/> under progress bars, writes the report folder.</summary>
        public Task<int> RunAsync(ParseResult parse, string title, Func<BenchContext, Task> body, CancellationToken cancellationToken) => CommandErrors.RunAsync(async () =>
        {
            var quiet = parse.GetValue(Quiet);
            await using var host = Common.CreateHost(parse);
            var repository = host.Repository;
            var models = new TimedModels(host.Models);
            var report = BenchReport.Create(parse.GetValue(Out)!, title, MachineInfo.Read(repository.ExecutionProvider), TimeProvider.System, echo: null);
            try
            {
                await BenchProgress.RunAsync(quiet, async progress =>
                {
                    await body(new BenchContext(repository, models, report, progress, parse.GetValue(Quick))).ConfigureAwait(false);
                    return 0;
                }).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                report.Discard(); // an interrupted run leaves no partial report behind
                throw new CommandCancelledException($"removed the unfinished run folder {report.Folder}");
            }
            catch
            {
                report.DiscardIfEmpty(); // a bad option leaves no empty run folder behind
                throw;
            }
            var path = report.Write(TimeProvider.System);
            if (!quiet)
            {
                Console.WriteLine(await File.ReadAllTextAsync(path).ConfigureAwait(false));
            }

            Console.WriteLine($"report: {path}");
            return 0;
        });

        public string ModelsPath(ParseResult parse) =>
            parse.GetValue(Common.Models) is { Length: > 0 } given ? given
            : Environment.GetEnvironmentVariable("SEARCHORCH_MODELS") is { Length: > 0 } env ? env
            : CommonOptions.FindNearestModels() ?? throw new InvalidRequestException("models", "no model repository found: pass --models <folder>.");
    }

    /// <summary>
    /// The verifier counting searches score with: the noise-aware one, since strategies judge mid-trajectory nodes and their
    /// previews (BENCHMARKS.md 3b); sharing picks among finished samples only and keeps the clean-image count-verifier.
    /// </summary>
    private const string SearchVerifier = "count-verifier-t";

    private static Option<string> ModelOption() => new("--model") { Description = "The denoiser.", DefaultValueFactory = _ => "counting" };

    private static Option<string> VerifierOption(string fallback) => new("--verifier") { Description = "The verifier searches score with.", DefaultValueFactory = _ => fallback };

    private static Option<int> SeedsOption(int fallback) => new("--seeds") { Description = "Seeds per condition (--quick: 1).", DefaultValueFactory = _ => fallback };

    private static Option<int> StepsOption(int fallback, string what) => new("--steps") { Description = what, DefaultValueFactory = _ => fallback };

    private static Option<double> GuidanceOption() => new("--guidance") { Description = "Classifier-free guidance scale.", DefaultValueFactory = _ => 2.0 };

    private static Option<double> EtaOption() => new("--eta") { Description = "DDIM η.", DefaultValueFactory = _ => 0.5 };

    private static Command CreateSharing()
    {
        var bench = new BenchOptions();
        var (model, verifier, seeds, steps, guidance, eta) = (ModelOption(), VerifierOption("count-verifier"), SeedsOption(10), StepsOption(50, "Sampling steps N."), GuidanceOption(), EtaOption());
        var ks = new Option<string>("--ks") { Description = "Branch counts k, comma-separated.", DefaultValueFactory = _ => "2,4,8" };
        var fractions = new Option<string>("--fractions") { Description = "Fork points s/N, comma-separated.", DefaultValueFactory = _ => "0,0.2,0.5,0.8" };
        var conditions = new Option<string?>("--conditions") { Description = "Conditions (a pipeline's prompts), comma-separated (default: every label, or a pipeline's twelve bench prompts; --quick: the 1st, 5th and 9th of those)." };
        var command = new Command("sharing", "shared_prefix against independent best-of-k for each k and s/N: formula m, measured NFE ratio, wall-time ratio, accuracy, and where the time goes.")
        {
            model, verifier, seeds, steps, guidance, eta, ks, fractions, conditions,
        };
        bench.AddTo(command);
        command.SetAction((parse, cancellationToken) => bench.RunAsync(parse, "searchorch bench sharing", context =>
            SharingBench.RunAsync(context, Sharing(parse, context.Quick, model, verifier, seeds, steps, guidance, eta, ks, fractions, conditions), cancellationToken), cancellationToken));
        return command;
    }

    private static SharingSettings Sharing(ParseResult parse, bool quick, Option<string> model, Option<string> verifier, Option<int> seeds, Option<int> steps, Option<double> guidance, Option<double> eta, Option<string> ks, Option<string> fractions, Option<string?> conditions) => new()
    {
        Model = parse.GetValue(model)!,
        Verifier = parse.GetValue(verifier)!,
        Ks = Numbers("ks", parse.GetValue(ks)!, s => int.Parse(s, CultureInfo.InvariantCulture)),
        Fractions = Numbers("fractions", parse.GetValue(fractions)!, s => double.Parse(s, CultureInfo.InvariantCulture)),
        Steps = parse.GetValue(steps),
        Seeds = quick ? 1 : parse.GetValue(seeds),
        Conditions = parse.GetValue(conditions) is { } list ? Split(list) : [],
        Guidance = parse.GetValue(guidance),
        Eta = parse.GetValue(eta),
    };

    private static Command CreateEngine()
    {
        var bench = new BenchOptions();
        var model = ModelOption();
        var steps = StepsOption(20, "Steps of each search in the engine runs.");
        var guidance = GuidanceOption();
        var sizes = new Option<string>("--batch-sizes") { Description = "Raw-loop batch sizes (rows), comma-separated.", DefaultValueFactory = _ => "1,2,4,8,16,32,48,64" };
        var concurrency = new Option<string>("--concurrency") { Description = "Concurrent searches, comma-separated.", DefaultValueFactory = _ => "1,8,32,64" };
        var seconds = new Option<double>("--seconds") { Description = "Measuring window per batch size and per level (--quick: 1).", DefaultValueFactory = _ => 5 };
        var command = new Command("engine", "The raw forward-pass limit at batch 1..64 against the engine at 1, 8, 32 and 64 concurrent searches, with batching and without.")
        {
            model, steps, guidance, sizes, concurrency, seconds,
        };
        bench.AddTo(command);
        command.SetAction((parse, cancellationToken) => bench.RunAsync(parse, "searchorch bench engine", context =>
            EngineBench.RunAsync(context, Engine(parse, context.Quick, model, steps, guidance, sizes, concurrency, seconds), cancellationToken), cancellationToken));
        return command;
    }

    private static EngineSettings Engine(ParseResult parse, bool quick, Option<string> model, Option<int> steps, Option<double> guidance, Option<string> sizes, Option<string> concurrency, Option<double> seconds) => new()
    {
        Model = parse.GetValue(model)!,
        Steps = parse.GetValue(steps),
        Guidance = parse.GetValue(guidance),
        BatchSizes = Numbers("batch-sizes", parse.GetValue(sizes)!, s => int.Parse(s, CultureInfo.InvariantCulture)),
        Concurrency = Numbers("concurrency", parse.GetValue(concurrency)!, s => int.Parse(s, CultureInfo.InvariantCulture)),
        Window = TimeSpan.FromSeconds(quick ? Math.Min(1, parse.GetValue(seconds)) : parse.GetValue(seconds)),
    };

    private static Command CreateSearch()
    {
        var bench = new BenchOptions();
        var (model, verifier, seeds, steps, guidance, eta) = (ModelOption(), VerifierOption(SearchVerifier), SeedsOption(20), StepsOption(50, "Sampling steps N."), GuidanceOption(), EtaOption());
        var only = new Option<string?>("--strategies") { Description = "Run only these strategies (comma-separated names)." };
        var concurrency = new Option<int>("--concurrency") { Description = "Searches in flight at once (their steps share batches).", DefaultValueFactory = _ => 24 };
        var split = new Option<string>("--split") { Description = "tuning (seeds 1…S; Sudoku: the puzzles of generator seed 20261124) or held-out (seeds 1,000,001…; Sudoku: generator seed 20261201): defaults are tuned on tuning only.", DefaultValueFactory = _ => "tuning" };
        split.AcceptOnlyFromAmong("tuning", "held-out");
        var previewSteps = new Option<int?>("--preview-steps") { Description = "The requests' preview steps j: strategies that set none score mid-trajectory nodes on previews of j steps (1 = raw x0-predictions); default each strategy's own (bfs 3, dfs 3, search_over_paths 2, else 1)." };
        var rows = new Option<string[]>("--row") { Description = "A row to run instead of the built-in list: '<strategy> key=value …', the parameters as 'searchorch strategies' lists them (repeatable). Sudoku rows also take sampler.temperature|top_k|top_p|threshold|policy|remask=… (over the greedy single pass) and budget=<multiple of N>." };
        var command = new Command("search", "Accuracy against NFE for every strategy, with a plot: on the counting task judged by the object counter, on a text-to-image family (--model shapes-t2i) over twelve fixed prompts judged by the compositional judge.")
        {
            model, verifier, seeds, steps, guidance, eta, only, concurrency, split, previewSteps, rows,
        };
        bench.AddTo(command);
        command.SetAction((parse, cancellationToken) => bench.RunAsync(parse, "searchorch bench search", context =>
            SearchBench.RunAsync(context, Search(parse, context.Quick, model, verifier, seeds, steps, guidance, eta, only, concurrency, rows) with
            {
                Split = parse.GetValue(split) == "held-out" ? BenchSplit.HeldOut : BenchSplit.Tuning,
                PreviewSteps = parse.GetValue(previewSteps),
            }, cancellationToken), cancellationToken));
        return command;
    }

    private static SearchSettings Search(ParseResult parse, bool quick, Option<string> model, Option<string> verifier, Option<int> seeds, Option<int> steps, Option<double> guidance, Option<double> eta, Option<string?> only, Option<int> concurrency, Option<string[]> rows) => new()
    {
        Model = parse.GetValue(model)!,
        Verifier = parse.GetValue(verifier)!,
        Seeds = quick ? 1 : parse.GetValue(seeds),
        Steps = parse.GetValue(steps),
        Guidance = parse.GetValue(guidance),
        Eta = parse.GetValue(eta),
        Strategies = parse.GetValue(only) is { } list ? Split(list) : null,
        Rows = parse.GetValue(rows) is { Length: > 0 } given ? [.. given.Select(SearchConfiguration.Parse)] : null,
        Concurrency = parse.GetValue(concurrency),
        IncludeAuto = !quick,
        CommitmentCurve = !quick && parse.GetValue(only) is null && parse.GetValue(rows) is not { Length: > 0 }, // the curve is for the full table; it costs more than a few rows
    };

    private static Command CreateServe()
    {
        var bench = new BenchOptions();
        var requests = new Option<int>("--requests") { Description = "Requests per concurrency level (at least the concurrency; --quick: 64).", DefaultValueFactory = _ => 256 };
        var steps = StepsOption(10, "Sampling steps of each request.");
        var command = new Command("serve", "Load the gRPC server over loopback at concurrency 1, 8, 64 and 256.") { requests, steps };
        bench.AddTo(command);
        command.SetAction((parse, cancellationToken) => bench.RunAsync(parse, "searchorch bench serve", context =>
            ServeBench.RunAsync(context, Serve(parse, bench, context.Quick, requests, steps), cancellationToken), cancellationToken));
        return command;
    }

    private static ServeSettings Serve(ParseResult parse, BenchOptions bench, bool quick, Option<int> requests, Option<int> steps) => new()
    {
        ModelsPath = bench.ModelsPath(parse),
        Requests = quick ? Math.Min(64, parse.GetValue(requests)) : parse.GetValue(requests),
        Steps = parse.GetValue(steps),
        Concurrency = quick ? [1, 8, 64] : [1, 8, 64, 256],
    };

    private static Command CreateAll()
    {
        var bench = new BenchOptions();
        var seeds = new Option<int?>("--seeds") { Description = "Seeds per condition for sharing and search (default 10 and 20; --quick: 1)." };
        var command = new Command("all", "Every bench with its defaults into one report folder: sharing, engine, search, serve (--quick: a smoke run of a few minutes).") { seeds };
        bench.AddTo(command);
        command.SetAction((parse, cancellationToken) => bench.RunAsync(parse, "searchorch bench all", async context =>
        {
            var quick = context.Quick;
            await SharingBench.RunAsync(context, new SharingSettings
            {
                Model = "counting",
                Verifier = "count-verifier",
                Ks = [2, 4, 8],
                Fractions = [0, 0.2, 0.5, 0.8],
                Steps = 50,
                Seeds = quick ? 1 : parse.GetValue(seeds) ?? 10,
                Conditions = quick ? ["1", "5", "9"] : [],
                Guidance = 2,
                Eta = 0.5,
            }, cancellationToken).ConfigureAwait(false);
            await EngineBench.RunAsync(context, new EngineSettings
            {
                Model = "counting",
                BatchSizes = [1, 2, 4, 8, 16, 32, 48, 64],
                Concurrency = [1, 8, 32, 64],
                Window = TimeSpan.FromSeconds(quick ? 1 : 5),
                Steps = 20,
                Guidance = 2,
            }, cancellationToken).ConfigureAwait(false);
            await SearchBench.RunAsync(context, new SearchSettings
            {
                Model = "counting",
                Verifier = SearchVerifier,
                Seeds = quick ? 1 : parse.GetValue(seeds) ?? 20,
                Steps = 50,
                Guidance = 2,
                Eta = 0.5,
                Concurrency = 24,
                IncludeAuto = !quick,
                CommitmentCurve = !quick,
            }, cancellationToken).ConfigureAwait(false);
            await ServeBench.RunAsync(context, new ServeSettings
            {
                ModelsPath = bench.ModelsPath(parse),
                Requests = quick ? 64 : 256,
                Steps = 10,
                Concurrency = quick ? [1, 8, 64] : [1, 8, 64, 256],
            }, cancellationToken).ConfigureAwait(false);
        }, cancellationToken));
        return command;
    }

    private static Command CreateLinks()
    {
        var common = new CommonOptions();
        var workers = new Option<string?>("--workers") { Description = "Worker endpoints, comma-separated (default: start one worker on loopback)." };
        var secret = new Option<string?>("--secret") { Description = "The workers' shared secret." };
        var latency = new Option<double>("--inject-latency-ms") { Description = "Put an artificial link in front of each worker: this round-trip latency (ms)." };
        var bandwidth = new Option<double>("--inject-bandwidth") { Description = "... and this bandwidth (MB/s)." };
        var repeats = new Option<int>("--repeats") { Description = "Probes per payload size.", DefaultValueFactory = _ => 5 };
        var command = new Command("links", "Probe each worker link at several payload sizes; print α, β (as bandwidth), R² and transfer time by payload size.")
        {
            workers, secret, latency, bandwidth, repeats,
        };
        common.AddTo(command);
        command.SetAction((parse, cancellationToken) => CommandErrors.RunAsync(async () =>
        {
            await using var host = common.CreateHost(parse);
            return await WorkersBench.LinksAsync(host.Repository, new LinksSettings
            {
                Workers = parse.GetValue(workers) is { } list ? Split(list) : [],
                Secret = parse.GetValue(secret),
                InjectedLatencyMs = parse.GetValue(latency),
                InjectedBandwidthMBps = parse.GetValue(bandwidth),
                Repeats = parse.GetValue(repeats),
            }, cancellationToken).ConfigureAwait(false);
        }));
        return command;
    }

    private static Command CreateWorkers()
    {
        var common = new CommonOptions();
        var searches = new Option<int>("--searches") { Description = "Searches per mode.", DefaultValueFactory = _ => 18 };
        var concurrency = new Option<int>("--concurrency") { Description = "Searches in flight at once.", DefaultValueFactory = _ => 6 };
        var quiet = new Option<bool>("--quiet") { Description = "No progress lines on standard error (for machines)." };
        var steps = new Option<int>("--steps") { Description = "Sampling steps N of each shared_prefix search (k = 4, fork at N/2).", DefaultValueFactory = _ => 50 };
        var command = new Command("workers", "The same searched workload locally, on 2 loopback workers in stateless mode, in resident mode and as KServe v2 servers; then placement with heterogeneous workers.")
        {
            searches, concurrency, steps, quiet,
        };
        common.AddTo(command);
        command.SetAction((parse, cancellationToken) => CommandErrors.RunAsync(async () =>
        {
            await using var host = common.CreateHost(parse);
            var settings = new WorkersSettings { Searches = parse.GetValue(searches), Concurrency = parse.GetValue(concurrency), Steps = parse.GetValue(steps), Quiet = parse.GetValue(quiet) };
            return await WorkersBench.WorkersAsync(host.Repository, host.Models, settings, cancellationToken).ConfigureAwait(false);
        }));
        return command;
    }

    private static List<string> Split(string value) => [.. value.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)];

    private static List<T> Numbers<T>(string option, string value, Func<string, T> parse)
    {
        try
        {
            return [.. Split(value).Select(parse)];
        }
        catch (FormatException)
        {
            throw new InvalidRequestException(option, $"--{option} must be comma-separated numbers, got '{value}'.");
        }
        catch (OverflowException)
        {
            throw new InvalidRequestException(option, $"--{option} has a number out of range: '{value}'.");
        }
    }
}
