using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using SearchOrchestrator.Onnx.Manifests;
using SearchOrchestrator.Scheduling;
using SearchOrchestrator.Search;
using SearchOrchestrator.Strategies;
using SearchOrchestrator.Verifiers;

namespace SearchOrchestrator.Cli.Commands;

/// <summary><c>searchorch models</c>: list the repository; <c>models evaluate</c>: measure single-shot accuracy.</summary>
internal static class ModelsCommand
{
    public static Command Create()
    {
        var common = new CommonOptions();
        var command = new Command("models", "List the models in the repository with their status, or evaluate one.");
        common.AddTo(command);
        command.SetAction((parse, cancellationToken) => CommandErrors.RunAsync(async () =>
        {
            await using var host = common.CreateHost(parse, warmUp: false);
            var repository = host.Repository;
            Console.WriteLine($"{repository.RootPath} ({repository.ExecutionProvider})");
            foreach (var entry in repository.Models)
            {
                Console.WriteLine(!entry.IsReady ? $"  {entry.Name,-16} {entry.Kind,-9} FAILED  {entry.Error}"
                    : entry.Stages is { } stages ? $"  {entry.Name,-16} {entry.Kind,-9} ready   diffusers layout, stages {string.Join(", ", stages.Select(s => $"{s.Name} {s.Dtype}"))}"
                    : $"  {entry.Name,-16} {entry.Kind,-9} ready   {Describe(entry.Manifest!)}");
                foreach (var stage in entry.IsReady ? entry.Stages ?? [] : [])
                {
                    Console.WriteLine($"      {stage.Name,-12} {string.Join(" ", stage.Inputs)} -> {string.Join(" ", stage.Outputs)}");
                }
            }

            return repository.Models.All(e => e.IsReady) ? 0 : 1;
        }));
        command.Subcommands.Add(CreateEvaluate());
        return command;
    }

    private static string Describe(ModelManifest m)
    {
        var sample = m.Inputs?.GetValueOrDefault("sample")?.Shape is { } s ? string.Join('x', s.Skip(1)) : "?";
        return m.Kind == ManifestNames.Denoiser
            ? m.Tokens is { } tokens
                ? $"{m.Process}/{m.Prediction}, sample {sample}, vocabulary {tokens.Vocabulary?.Length ?? m.Outputs?["prediction"].Shape?[^1]} tokens (mask id {tokens.MaskId}), sha256 {m.Sha256?[..12]}"
                : $"{m.Process}/{m.Prediction}, sample {sample}, conditions {string.Join(",", m.Condition?.Vocabulary?.Keys.AsEnumerable() ?? [])}, sha256 {m.Sha256?[..12]}"
            : $"{m.Scoring?.Rule}, sample {sample}, labels {string.Join(",", m.Scoring?.Labels ?? [])}, sha256 {m.Sha256?[..12]}";
    }

    private static Command CreateEvaluate()
    {
        var common = new CommonOptions();
        var model = new Option<string>("--model") { Description = "The denoiser to evaluate.", DefaultValueFactory = _ => "counting" };
        var verifier = new Option<string>("--verifier") { Description = "The learned verifier to compare with the programmatic counter.", DefaultValueFactory = _ => "count-verifier" };
        var perCondition = new Option<int>("--samples-per-condition") { Description = "Samples for each condition label.", DefaultValueFactory = _ => 200 };
        var steps = new Option<int>("--steps") { Description = "Sampling steps N.", DefaultValueFactory = _ => 50 };
        var guidance = new Option<double>("--guidance") { Description = "Classifier-free guidance scale (1 = none).", DefaultValueFactory = _ => 2.0 };
        var eta = new Option<double>("--eta") { Description = "DDIM η.", DefaultValueFactory = _ => 0.0 };
        var seed = new Option<ulong>("--seed") { Description = "Request seed.", DefaultValueFactory = _ => 1 };
        var command = new Command("evaluate", "Single-shot exact-count accuracy of a counting denoiser, judged by the programmatic counter, per condition.")
        {
            model, verifier, perCondition, steps, guidance, eta, seed,
        };
        common.AddTo(command);
        command.SetAction((parse, cancellationToken) => CommandErrors.RunAsync(async () =>
        {
            var each = parse.GetValue(perCondition);
            if (each < 1)
            {
                throw new InvalidRequestException("samples-per-condition", $"--samples-per-condition must be at least 1, got {each}.");
            }

            await using var host = common.CreateHost(parse, settings: [new($"{BatchingOptions.SectionName}:{nameof(BatchingOptions.MaxBatchSize)}", "128")]);
            var repository = host.Repository;
            var denoiser = repository.GetDenoiser(parse.GetValue(model)!);
            if (denoiser.Description.Process is not Processes.GaussianProcess)
            {
                throw new InvalidRequestException("model", $"'models evaluate' measures the counting task; for the masked model '{denoiser.Description.Name}' run 'bench search --model {denoiser.Description.Name}' (its first row is the single-shot solve rate).");
            }

            var learned = repository.GetVerifier(parse.GetValue(verifier)!);
            var engine = host.Engine;
            var vocabulary = denoiser.Description.Conditions.Labels;
            // One request per condition, all at once: their steps share batches.
            var requests = vocabulary.Select(label => new SearchRequest
            {
                Model = denoiser.Description.Name,
                Condition = label,
                Steps = parse.GetValue(steps),
                Guidance = parse.GetValue(guidance),
                Eta = parse.GetValue(eta),
                Seed = parse.GetValue(seed),
                Strategy = new BestOfNStrategy(each),
                Candidates = each,
            }).ToList();
            requests.ForEach(engine.Validate);
            var request = requests[0];

            var clock = Stopwatch.StartNew();
            Console.Error.WriteLine($"sampling {each} x {vocabulary.Count} conditions x {request.Steps} steps ...");
            var results = await Task.WhenAll(requests.Select(r => engine.RunAsync(r, cancellationToken))).ConfigureAwait(false);
            var shape = denoiser.Description.SampleShape;
            var labels = new List<string>();
            var samples = new List<float[]>();
            for (var c = 0; c < vocabulary.Count; c++)
            {
                labels.AddRange(Enumerable.Repeat(vocabulary[c], results[c].Candidates.Count));
                samples.AddRange(results[c].Candidates.Select(x => x.Sample));
            }

            var scores = new List<float>();
            foreach (var chunk in Enumerable.Range(0, samples.Count).Chunk(256))
            {
                scores.AddRange(await learned.ScoreAsync(new VerifierBatch(shape, chunk.SelectMany(i => samples[i]).ToArray(), [.. chunk.Select(i => labels[i])]), cancellationToken).ConfigureAwait(false));
            }

            var counter = new ObjectCounter();
            Console.WriteLine($"{denoiser.Description.Name}: {each} samples per condition, {request.Steps} DDIM steps, eta {request.Eta}, guidance {request.Guidance}, seed {request.Seed}; {clock.Elapsed.TotalSeconds:0} s on {repository.ExecutionProvider}");
            Console.WriteLine();
            Console.WriteLine($"| n | samples | exact count | accuracy | mean abs. error | {learned.Name} agrees with counter |");
            Console.WriteLine("|---|---|---|---|---|---|");
            int totalExact = 0, totalAgree = 0;
            foreach (var label in vocabulary)
            {
                int exact = 0, agree = 0, seen = 0;
                double error = 0;
                for (var i = 0; i < labels.Count; i++)
                {
                    if (labels[i] != label)
                    {
                        continue;
                    }

                    seen++;
                    var counted = counter.Count(samples[i], shape);
                    var wanted = int.Parse(label, CultureInfo.InvariantCulture);
                    var correct = counted == wanted;
                    exact += correct ? 1 : 0;
                    error += Math.Abs(counted - wanted);
                    agree += (scores[i] > 0.5f) == correct ? 1 : 0;
                }

                totalExact += exact;
                totalAgree += agree;
                Console.WriteLine(FormattableString.Invariant($"| {label} | {seen} | {exact} | {100.0 * exact / seen:0.0}% | {error / seen:0.00} | {100.0 * agree / seen:0.0}% |"));
            }

            Console.WriteLine(FormattableString.Invariant($"| all | {labels.Count} | {totalExact} | {100.0 * totalExact / labels.Count:0.0}% | | {100.0 * totalAgree / labels.Count:0.0}% |"));
            return 0;
        }));
        return command;
    }
}
