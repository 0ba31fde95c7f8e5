using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using SearchOrchestrator.Imaging;
using SearchOrchestrator.Sampling;
using SearchOrchestrator.Verifiers;

namespace SearchOrchestrator.Cli.Commands;

/// <summary><c>searchorch generate</c>: independent trajectories through ONNX Runtime, written as a PNG.</summary>
internal static class GenerateCommand
{
    public static Command Create()
    {
        var common = new CommonOptions();
        var model = new Option<string>("--model") { Description = "The denoiser to run, by name.", Required = true };
        var condition = new Option<string>("--condition")
        {
            Description = "The condition label (e.g. 7), a comma-separated list cycled over the samples, or 'all' for every label in turn.",
            Required = true,
        };
        var steps = new Option<int>("--steps") { Description = "Sampling steps N.", DefaultValueFactory = _ => 50 };
        var seed = new Option<ulong>("--seed") { Description = "Request seed; sample i is keyed by (seed, i).", DefaultValueFactory = _ => 1 };
        var guidance = new Option<double>("--guidance") { Description = "Classifier-free guidance scale (1 = none).", DefaultValueFactory = _ => 2.0 };
        var eta = new Option<double>("--eta") { Description = "DDIM η: 0 deterministic … 1 ancestral.", DefaultValueFactory = _ => 0.0 };
        var samples = new Option<int>("--samples") { Description = "How many samples; more than one writes a labelled grid.", DefaultValueFactory = _ => 1 };
        var verifier = new Option<string>("--verifier") { Description = "The learned verifier that scores each sample ('none' to skip).", DefaultValueFactory = _ => "count-verifier" };
        var output = new Option<string>("--out") { Description = "The PNG to write.", DefaultValueFactory = _ => "generated.png" };

        var command = new Command("generate", "Run independent trajectories of a denoiser and write the samples as a PNG.")
        {
            model, condition, steps, seed, guidance, eta, samples, verifier, output,
        };
        common.AddTo(command);
        command.SetAction((parse, cancellationToken) => CommandErrors.RunAsync(async () =>
        {
            var count = parse.GetValue(samples);
            if (count < 1)
            {
                throw new InvalidRequestException("samples", $"--samples must be at least 1, got {count}.");
            }

            using var target = OutputFile.Open(parse.GetValue(output)!);
            using var repository = common.LoadRepository(parse);
            var denoiser = repository.GetDenoiser(parse.GetValue(model)!);
            var verifierName = parse.GetValue(verifier)!;
            var learned = verifierName == "none" ? null : repository.GetVerifier(verifierName);
            var description = denoiser.Description;
            var labels = ExpandConditions(parse.GetValue(condition)!, description.Conditions.Labels, count);
            var request = new SamplingRequest
            {
                Conditions = labels,
                Steps = parse.GetValue(steps),
                Guidance = parse.GetValue(guidance),
                Eta = parse.GetValue(eta),
                Seed = parse.GetValue(seed),
            };

            Console.WriteLine($"{description.Name}: {count} sample(s), condition {parse.GetValue(condition)}, {request.Steps} DDIM steps (eta {request.Eta}), guidance {request.Guidance}, seed {request.Seed}, on {repository.ExecutionProvider}");
            var clock = Stopwatch.StartNew();
            var result = await DenoisingLoop.RunAsync(denoiser, request, new StepProgress(count * (long)request.Steps), cancellationToken).ConfigureAwait(false);
            var elapsed = clock.Elapsed;

            var batch = new VerifierBatch(result.Shape, result.Samples, labels);
            var scores = learned is null ? null : await learned.ScoreAsync(batch, cancellationToken).ConfigureAwait(false);
            var counter = result.Shape.IsImage && result.Shape.Dimensions[0] == 1 ? new ObjectCounter() : null;
            var tiles = new List<GridTile>();
            var exact = 0;
            Console.WriteLine($"{"sample",6}  {"condition",9}  {"counted",7}  {(learned is null ? string.Empty : learned.Name)}");
            for (var i = 0; i < count; i++)
            {
                var counted = counter?.Count(result.Sample(i).Span, result.Shape);
                var match = counted?.ToString(CultureInfo.InvariantCulture) == labels[i];
                exact += match ? 1 : 0;
                Console.WriteLine($"{i,6}  {labels[i],9}  {counted?.ToString(CultureInfo.InvariantCulture) ?? "-",7}  {(scores is null ? string.Empty : scores[i].ToString("0.000", CultureInfo.InvariantCulture))}");
                var caption = counted is null ? $"n={labels[i]}" : $"n={labels[i]} c={counted}";
                tiles.Add(new GridTile(result.Sample(i), count == 1 ? string.Empty : caption, counted is null ? CaptionTone.Neutral : match ? CaptionTone.Good : CaptionTone.Bad));
            }

            if (counter is not null)
            {
                Console.WriteLine($"exact count: {exact}/{count} (programmatic counter)");
            }

            var range = description.Process.SampleRange ?? (-1f, 1f);
            var (height, width) = (result.Shape.Dimensions[^2], result.Shape.Dimensions[^1]);
            target.Commit(PngEncoder.Encode(ImageGrid.Compose(tiles, height, width, range, scale: 8)));
            Console.WriteLine($"NFE {result.Nfe} in {result.ForwardPasses} forward passes, {elapsed.TotalSeconds:0.00} s; wrote {target.Path}");
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

    private sealed class StepProgress(long total) : IProgress<long>
    {
        private int _lastPercent = -1;

        public void Report(long value)
        {
            var percent = (int)(100 * value / total);
            if (!Console.IsErrorRedirected && percent != _lastPercent)
            {
                _lastPercent = percent;
                Console.Error.Write($"\rdenoising {percent,3}% ({value}/{total} sample-steps)");
                if (value == total)
                {
                    Console.Error.WriteLine();
                }
            }
        }
    }
}
