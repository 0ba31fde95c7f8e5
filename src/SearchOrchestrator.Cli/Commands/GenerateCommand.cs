using System.CommandLine;
using System.Globalization;
using SearchOrchestrator.Imaging;
using SearchOrchestrator.Processes;
using SearchOrchestrator.Search;
using SearchOrchestrator.Strategies;
using SearchOrchestrator.Tensors;
using SearchOrchestrator.Verifiers;

namespace SearchOrchestrator.Cli.Commands;

/// <summary>
/// <c>searchorch generate</c>: independent samples, or with <c>--strategy</c> a searched generation, through ONNX
/// Runtime; the result is written as a PNG and described on the console.
/// </summary>
internal static class GenerateCommand
{
    public static Command Create()
    {
        var common = new CommonOptions();
        var model = new Option<string>("--model") { Description = "The denoiser to run, by name.", Required = true };
        var condition = new Option<string>("--condition")
        {
            Description = "The condition label (e.g. 7); without --strategy also a comma-separated list cycled over the samples, or 'all' for every label in turn.",
        };
        var prompts = new Option<string[]>("--prompt") { Description = "Text-to-image pipelines: the prompt (\"\" for an unconditional image); writes RGB PNGs; with --compare repeatable, one column per prompt. Text models (a diffusion LLM with a tokenizer.json): the prompt whose answer the search fills in; prints the text candidates." };
        var negativePrompt = new Option<string?>("--negative-prompt") { Description = "Text-to-image pipelines: what guidance steers away from (default: the empty prompt)." };
        var puzzle = new Option<string?>("--puzzle") { Description = "Masked models: the Sudoku puzzle, 81 characters row by row, '.' for a blank (prints grids instead of a PNG)." };
        var sampler = new Option<string[]>("--sampler") { Description = "Masked models: a sampler setting as key=value (repeatable): policy, temperature, top_k, top_p, threshold, remask." };
        var steps = new Option<int>("--steps") { Description = "Sampling steps N.", DefaultValueFactory = _ => CliDefaults.Steps };
        var seed = new Option<ulong>("--seed") { Description = "Request seed; every node's noise is keyed by (seed, its path).", DefaultValueFactory = _ => CliDefaults.Seed };
        var guidance = new Option<double>("--guidance") { Description = "Classifier-free guidance scale (1 = none; the counting model looks best at 2).", DefaultValueFactory = _ => CliDefaults.Guidance };
        var eta = new Option<double>("--eta") { Description = "DDIM η: 0 deterministic … 1 ancestral.", DefaultValueFactory = _ => CliDefaults.Eta };
        var samples = new Option<int>("--samples") { Description = "Samples to generate, or with --strategy the best candidates to return; more than one writes a labelled grid.", DefaultValueFactory = _ => 1 };
        var verifier = new Option<string?>("--verifier")
        {
            Description = "Verifiers, comma-separated: with --strategy the ones the search scores with, otherwise one that scores each sample for display ('none' to skip). Default: the model's own, count-verifier or sudoku-constraints.",
        };
        var ensemble = new Option<EnsembleRule>("--ensemble") { Description = "How several verifiers combine: MeanRank or WeightedSum.", DefaultValueFactory = _ => EnsembleRule.MeanRank };
        var strategy = new Option<string?>("--strategy") { Description = $"Search strategy: {string.Join(", ", StrategyNames.All)}, or a plug-in's (see 'searchorch strategies')." };
        var parameters = new Option<string[]>("--param") { Description = "A strategy parameter as key=value (repeatable); see 'searchorch strategies'." };
        var maxNfe = new Option<long?>("--max-nfe") { Description = "Budget: the most denoiser evaluations the search may spend." };
        var output = new Option<string>("--out") { Description = "The PNG to write.", DefaultValueFactory = _ => "generated.png" };
        var compare = new Option<bool>("--compare")
        {
            Description = "With --strategy: for each condition (a list or 'all') or each --prompt, one single shot and one searched result from the same seed, as a two-row grid (top: single shots, bottom: searched); prompts are judged by the compositional judge.",
        };

        var command = new Command("generate", "Generate samples of a denoiser, independently or by a verifier-guided search, and write them as a PNG. A verifier on an Open Inference Protocol server: --Verifiers:Remote:0:Name <name> --Verifiers:Remote:0:Endpoint <url> ….")
        {
            model, condition, prompts, negativePrompt, steps, seed, guidance, eta, samples, verifier, ensemble, strategy, parameters, maxNfe, output, puzzle, sampler, compare,
        };
        command.TreatUnmatchedTokensAsErrors = false;
        common.AddTo(command);
        command.SetAction((parse, cancellationToken) => CommandErrors.RunAsync(async () =>
        {
            var count = parse.GetValue(samples);
            if (count < 1)
            {
                throw new InvalidRequestException("samples", $"--samples must be at least 1, got {count}.");
            }

            var given = parse.GetValue(prompts) ?? [];
            if (given.Length > 1 && !parse.GetValue(compare))
            {
                throw new InvalidRequestException("prompt", $"--prompt is given {given.Length} times; several prompts need --compare (a single shot and a searched result for each).");
            }

            var prompt = given.Length == 0 ? null : given[0];
            await using var host = common.CreateHost(parse);
            var catalog = host.Models;
            var engine = host.Engine;
            if (catalog.GetStages(parse.GetValue(model)!) is not null
                || (prompt is not null && catalog.GetDenoiser(parse.GetValue(model)!).Description.Process is not MaskedProcess { Text: not null }))
            {
                if (parse.GetValue(condition) is not null)
                {
                    throw new InvalidRequestException("condition", "--condition is for class-conditioned models; a text-to-image pipeline takes --prompt.");
                }

                using var image = OutputFile.Open(parse.GetValue(output)!);
                var request = new SearchRequest
                {
                    Model = parse.GetValue(model)!,
                    TextPrompt = prompt ?? throw new InvalidRequestException("prompt", $"model '{parse.GetValue(model)}' is a text-to-image pipeline: --prompt is required."),
                    NegativePrompt = parse.GetValue(negativePrompt),
                    Steps = parse.GetValue(steps),
                    Guidance = parse.GetValue(guidance),
                    Eta = parse.GetValue(eta),
                    Seed = parse.GetValue(seed),
                    Strategy = parse.GetValue(strategy) is { } named
                        ? host.Strategies.Create(named, ParseParameters(parse.GetValue(parameters) ?? []), parse.GetValue(steps))
                        : new BestOfNStrategy(count),
                    Verifiers = ParseList(parse.GetValue(verifier) ?? "none"),
                    Ensemble = parse.GetValue(ensemble),
                    Budget = new SearchBudget { MaxNfe = parse.GetValue(maxNfe) },
                    Candidates = count,
                };
                if (parse.GetValue(compare) && parse.GetValue(strategy) is null)
                {
                    throw new InvalidRequestException("compare", "--compare needs --strategy: it sets single shots beside searched results.");
                }

                try
                {
                    image.Commit(parse.GetValue(compare)
                        ? await PipelineGenerate.CompareAsync(engine, request, given, cancellationToken).ConfigureAwait(false)
                        : await PipelineGenerate.RunAsync(engine, request, cancellationToken).ConfigureAwait(false));
                }
                catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
                {
                    throw new CommandCancelledException($"the search stopped and {image.Path} was not written");
                }

                Console.WriteLine($"wrote {image.Path}");
                return 0;
            }

            if (parse.GetValue(negativePrompt) is not null)
            {
                throw new InvalidRequestException("negative-prompt", "--negative-prompt is for text-to-image pipelines.");
            }

            var denoiser = catalog.GetDenoiser(parse.GetValue(model)!);

            // A masked model's request, for a text prompt or a puzzle.
            SearchRequest Masked(IReadOnlyList<string> verifiers) => new()
            {
                Model = denoiser.Description.Name,
                Steps = parse.GetValue(steps),
                Seed = parse.GetValue(seed),
                Sampler = MaskedGenerate.ParseSampler(parse.GetValue(sampler) ?? []),
                Strategy = parse.GetValue(strategy) is { } searched
                    ? host.Strategies.Create(searched, ParseParameters(parse.GetValue(parameters) ?? []), parse.GetValue(steps))
                    : new BestOfNStrategy(1), // without --strategy: one pass

                Verifiers = verifiers,
                Ensemble = parse.GetValue(ensemble),
                Budget = new SearchBudget { MaxNfe = parse.GetValue(maxNfe) },
                Candidates = count,
            };

            if (prompt is { } text && denoiser.Description.Process is MaskedProcess { Text: not null } textModel)
            {
                return await TextGenerate.RunAsync(engine, textModel, Masked(ParseList(parse.GetValue(verifier) ?? "none")) with { TextPrompt = text }, cancellationToken).ConfigureAwait(false);
            }

            var verifiers = ParseList(parse.GetValue(verifier) ?? CliDefaults.Verifier(denoiser.Description));
            if (parse.GetValue(puzzle) is { } grid)
            {
                var masked = denoiser.Description.Process as MaskedProcess
                    ?? throw new InvalidRequestException("puzzle", $"--puzzle needs a masked model; '{denoiser.Description.Name}' is {denoiser.Description.Process.Name}.");
                return await MaskedGenerate.RunAsync(engine, masked, Masked(verifiers) with { Condition = grid }, cancellationToken).ConfigureAwait(false);
            }

            if (parse.GetValue(condition) is null)
            {
                throw new InvalidRequestException("condition", "--condition is required (or --puzzle for a masked model).");
            }

            using var target = OutputFile.Open(parse.GetValue(output)!);
            var template = new SearchRequest
            {
                Model = denoiser.Description.Name,
                Condition = string.Empty,
                Steps = parse.GetValue(steps),
                Guidance = parse.GetValue(guidance),
                Eta = parse.GetValue(eta),
                Seed = parse.GetValue(seed),
                Strategy = new BestOfNStrategy(1),
            };

            var strategyName = parse.GetValue(strategy);
            if (parse.GetValue(compare) && strategyName is null)
            {
                throw new InvalidRequestException("compare", "--compare needs --strategy: it sets single shots beside searched results.");
            }

            var columns = 0;
            List<Tile> report;
            try
            {
                if (parse.GetValue(compare))
                {
                    var value = parse.GetValue(condition)!;
                    var labels = ExpandConditions(value, denoiser.Description.Conditions.Labels, value == "all" ? denoiser.Description.Conditions.Labels.Count : value.Split(',').Length).Distinct().ToList();
                    columns = labels.Count;
                    report = await CompareAsync(engine, template with
                    {
                        Strategy = host.Strategies.Create(strategyName!, ParseParameters(parse.GetValue(parameters) ?? []), template.Steps),
                        Verifiers = verifiers,
                        Ensemble = parse.GetValue(ensemble),
                        Budget = new SearchBudget { MaxNfe = parse.GetValue(maxNfe) },
                    }, labels, cancellationToken).ConfigureAwait(false);
                }
                else
                {
                    report = strategyName is null
                        ? await IndependentAsync(engine, catalog, template, parse.GetValue(condition)!, count, verifiers, cancellationToken).ConfigureAwait(false)
                        : await SearchAsync(engine, template with
                        {
                            Condition = parse.GetValue(condition)!,
                            Strategy = host.Strategies.Create(strategyName, ParseParameters(parse.GetValue(parameters) ?? []), template.Steps),
                            Verifiers = verifiers,
                            Ensemble = parse.GetValue(ensemble),
                            Budget = new SearchBudget { MaxNfe = parse.GetValue(maxNfe) },
                            Candidates = count,
                        }, cancellationToken).ConfigureAwait(false);
                }
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                throw new CommandCancelledException($"the search stopped and {target.Path} was not written");
            }

            var range = (denoiser.Description.Process as GaussianProcess)?.SampleRange ?? (-1f, 1f);
            var shape = denoiser.Description.SampleShape;
            var tiles = report.Select(r => new GridTile(r.Sample, count == 1 && columns == 0 ? string.Empty : r.Caption, r.Tone)).ToList();
            target.Commit(PngEncoder.Encode(ImageGrid.Compose(tiles, shape.Dimensions[^2], shape.Dimensions[^1], range, scale: 8, columns: columns)));
            Console.WriteLine($"wrote {target.Path}");
            return 0;
        }));
        return command;
    }

    /// <summary>Sample i's condition: one label, a list cycled over the samples, or every label in turn.</summary>
    internal static string[] ExpandConditions(string value, IReadOnlyList<string> vocabulary, int samples)
    {
        var labels = value == "all"
            ? [.. vocabulary]
            : value.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        if (labels.Length == 0)
        {
            throw new InvalidRequestException("condition", "--condition needs a label, a comma-separated list of labels, or 'all'.");
        }

        return [.. Enumerable.Range(0, samples).Select(i => labels[i % labels.Length])];
    }

    /// <summary>Independent samples: one best_of_n request per condition, all run at once so their steps batch together.</summary>
    private static async Task<List<Tile>> IndependentAsync(SearchEngine engine, IModelProvider catalog, SearchRequest template, string conditions, int count, IReadOnlyList<string> verifiers, CancellationToken cancellationToken)
    {
        var denoiser = catalog.GetDenoiser(template.Model);
        var labels = ExpandConditions(conditions, denoiser.Description.Conditions.Labels, count);
        if (verifiers.Count > 1)
        {
            throw new InvalidRequestException("verifier", "without --strategy, --verifier names one verifier to display scores from (or 'none').");
        }

        var display = verifiers.Count == 1 ? catalog.GetVerifier(verifiers[0]) : null;
        var groups = labels.Distinct().ToList();
        var requests = groups.Select(label => template with
        {
            Condition = label,
            Strategy = new BestOfNStrategy(labels.Count(l => l == label)),
            Candidates = labels.Count(l => l == label),
        }).ToList();
        requests.ForEach(engine.Validate); // validate every request before any of them runs
        Console.WriteLine($"{template.Model}: {count} sample(s), condition {conditions}, {template.Steps} DDIM steps (eta {template.Eta}), guidance {template.Guidance}, seed {template.Seed}");
        var runs = requests.Select(r => engine.Start(r, cancellationToken: cancellationToken)).ToList();
        var results = await ProgressLine.WatchAsync(runs, requests.Sum(r => SearchEstimator.Estimate(r).Nfe), cancellationToken).ConfigureAwait(false);

        var taken = groups.ToDictionary(g => g, _ => 0);
        var samples = labels.Select(label => results[groups.IndexOf(label)].Candidates[taken[label]++]).ToList();
        var shape = samples[0].Shape;
        var scores = display is null ? null : await display.ScoreAsync(new VerifierBatch(shape, samples.SelectMany(c => c.Sample).ToArray(), labels), cancellationToken).ConfigureAwait(false);
        var tiles = new List<Tile>();
        Console.WriteLine($"{"sample",6}  {"condition",9}  {"counted",7}  {display?.Name}");
        for (var i = 0; i < samples.Count; i++)
        {
            var tile = Tile.For(samples[i], labels[i]);
            tiles.Add(tile);
            Console.WriteLine($"{i,6}  {labels[i],9}  {tile.Counted?.ToString(CultureInfo.InvariantCulture) ?? "-",7}  {scores?[i].ToString("0.000", CultureInfo.InvariantCulture)}");
        }

        if (tiles.Any(t => t.Counted is not null))
        {
            Console.WriteLine($"exact count: {tiles.Count(t => t.Tone == CaptionTone.Good)}/{tiles.Count} (programmatic counter)");
        }

        var nfe = results.Sum(r => r.Cost.Nfe);
        var wall = results.Max(r => r.Cost.WallTime);
        Console.WriteLine(FormattableString.Invariant($"NFE {nfe} in {results.Max(r => r.Cost.Batches)} batches (mean {results.Average(r => r.Cost.MeanBatchSize):0.0} rows), {wall.TotalSeconds:0.00} s"));
        return tiles;
    }

    /// <summary>
    /// For each label, a single shot (one trajectory, no verifier) and the search's best, from the same seed, all run at
    /// once so their steps batch together: the tiles are the single shots, then the searched results.
    /// </summary>
    private static async Task<List<Tile>> CompareAsync(SearchEngine engine, SearchRequest search, IReadOnlyList<string> labels, CancellationToken cancellationToken)
    {
        var singles = labels.Select(l => search with { Condition = l, Strategy = new BestOfNStrategy(1), Verifiers = [], Budget = new SearchBudget() }).ToList();
        var searches = labels.Select(l => search with { Condition = l }).ToList();
        var requests = singles.Concat(searches).ToList();
        requests.ForEach(engine.Validate);
        Console.WriteLine($"{search.Model}: single shots against search '{search.Strategy.Name}' (verifiers {string.Join(",", search.Verifiers)}) for conditions {string.Join(",", labels)}, {search.Steps} DDIM steps (eta {search.Eta}), guidance {search.Guidance}, seed {search.Seed}");
        var runs = requests.Select(r => engine.Start(r, cancellationToken: cancellationToken)).ToList();
        var results = await ProgressLine.WatchAsync(runs, requests.Sum(r => SearchEstimator.Estimate(r).Nfe), cancellationToken).ConfigureAwait(false);

        var tiles = results.Select((r, i) => Tile.For(r.Candidates[0], requests[i].Condition)).ToList();
        Console.WriteLine($"{"condition",9}  {"single",6}  {"searched",8}  {"score",6}  {"NFE",5}");
        for (var i = 0; i < labels.Count; i++)
        {
            var (single, searched) = (tiles[i], tiles[labels.Count + i]);
            Console.WriteLine(FormattableString.Invariant($"{labels[i],9}  {single.Counted?.ToString(CultureInfo.InvariantCulture) ?? "-",6}  {searched.Counted?.ToString(CultureInfo.InvariantCulture) ?? "-",8}  {results[labels.Count + i].Candidates[0].Score,6:0.000}  {results[labels.Count + i].Cost.Nfe,5}"));
        }

        long singleNfe = results.Take(labels.Count).Sum(r => r.Cost.Nfe), searchNfe = results.Skip(labels.Count).Sum(r => r.Cost.Nfe);
        Console.WriteLine($"exact count: single shots {tiles.Take(labels.Count).Count(t => t.Tone == CaptionTone.Good)}/{labels.Count}, searched {tiles.Skip(labels.Count).Count(t => t.Tone == CaptionTone.Good)}/{labels.Count} (programmatic counter)");
        Console.WriteLine(FormattableString.Invariant($"NFE: single shots {singleNfe}, searched {searchNfe} ({(double)searchNfe / singleNfe:0.00}x)"));
        return tiles;
    }

    /// <summary>A searched generation: one request, its best candidates and its cost account.</summary>
    private static async Task<List<Tile>> SearchAsync(SearchEngine engine, SearchRequest request, CancellationToken cancellationToken)
    {
        Console.WriteLine($"{request.Model}: search '{request.Strategy.Name}' for condition {request.Condition}, {request.Steps} DDIM steps (eta {request.Eta}), guidance {request.Guidance}, seed {request.Seed}, verifiers {string.Join(",", request.Verifiers)}");
        var result = (await ProgressLine.WatchAsync([engine.Start(request, cancellationToken: cancellationToken)], SearchEstimator.Estimate(request).Nfe, cancellationToken).ConfigureAwait(false))[0];
        var tiles = new List<Tile>();
        Console.WriteLine($"{"rank",4}  {"path",-14}  {"step",4}  {"score",8}  {"counted",7}");
        for (var i = 0; i < result.Candidates.Count; i++)
        {
            var candidate = result.Candidates[i];
            var tile = Tile.For(candidate, request.Condition);
            tiles.Add(tile);
            Console.WriteLine(FormattableString.Invariant($"{i + 1,4}  {candidate.Path,-14}  {candidate.StepIndex,4}  {candidate.Score,8:0.000}  {tile.Counted?.ToString(CultureInfo.InvariantCulture) ?? "-",7}"));
        }

        var cost = result.Cost;
        var previews = cost.PreviewNfe > 0 ? FormattableString.Invariant($", {cost.PreviewNfe} of them previews") : string.Empty;
        Console.WriteLine(FormattableString.Invariant($"NFE {cost.Nfe} (independent runs: {cost.NfeIndependent}, saving {cost.Saving:P1}{previews}), {cost.Nfe / (double)request.Steps:0.00}x one trajectory"));
        Console.WriteLine(FormattableString.Invariant($"verifier calls {cost.VerifierCalls}; {cost.Batches} batches, mean {cost.MeanBatchSize:0.0} rows; compute {cost.ComputeTime.TotalSeconds:0.00} s, queued {cost.QueueTime.TotalSeconds:0.00} s, wall {cost.WallTime.TotalSeconds:0.00} s"));
        foreach (var v in cost.Verifiers.Where(v => v.BytesSent + v.BytesReceived > 0))
        {
            Console.WriteLine(FormattableString.Invariant($"verifier {v.Name} ({v.Kind}): {v.Calls} calls, {v.BytesSent} B sent, {v.BytesReceived} B received, {v.TransferTime.TotalMilliseconds:0.0} ms"));
        }

        if (result.ForkStep is { } fork)
        {
            Console.WriteLine($"fork step {fork}{(cost.CalibrationNfe > 0 ? FormattableString.Invariant($" (calibrated, {cost.CalibrationNfe} NFE)") : string.Empty)}");
        }

        if (result.BudgetLimited)
        {
            Console.WriteLine("budget-limited: the strategy stopped early and returned the best it had");
        }

        return tiles;
    }

    private static List<string> ParseList(string value) =>
        value == "none" ? [] : [.. value.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)];

    private static Dictionary<string, string> ParseParameters(string[] values)
    {
        var parameters = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var value in values)
        {
            var split = value.IndexOf('=', StringComparison.Ordinal);
            if (split <= 0)
            {
                throw new InvalidRequestException("param", $"--param must be key=value, got '{value}'.");
            }

            parameters[value[..split].Trim()] = value[(split + 1)..].Trim();
        }

        return parameters;
    }

    /// <summary>One tile of the output grid.</summary>
    private sealed record Tile(float[] Sample, string Caption, CaptionTone Tone, int? Counted)
    {
        public static Tile For(Candidate candidate, string condition)
        {
            int? counted = IsCountable(candidate.Shape) ? new ObjectCounter().Count(candidate.Sample, candidate.Shape) : null;
            var tone = counted is null ? CaptionTone.Neutral : counted.Value.ToString(CultureInfo.InvariantCulture) == condition ? CaptionTone.Good : CaptionTone.Bad;
            return new Tile(candidate.Sample, counted is null ? $"n={condition}" : $"n={condition} c={counted}", tone, counted);
        }

        private static bool IsCountable(SampleShape shape) => shape.IsImage && shape.Dimensions[0] == 1;
    }
}
