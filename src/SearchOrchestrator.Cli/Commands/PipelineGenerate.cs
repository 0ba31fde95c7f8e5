using System.Globalization;
using SearchOrchestrator.Imaging;
using SearchOrchestrator.Search;
using SearchOrchestrator.Strategies;
using SearchOrchestrator.Verifiers;

namespace SearchOrchestrator.Cli.Commands;

/// <summary><c>searchorch generate --prompt</c> on a text-to-image pipeline: the search, its cost account, and its decoded RGB candidates as a PNG.</summary>
internal static class PipelineGenerate
{
    /// <summary>Runs <paramref name="request"/>, prints the candidates and the cost (encoder and decoder calls beside NFE), and returns the PNG.</summary>
    public static async Task<byte[]> RunAsync(SearchEngine engine, SearchRequest request, CancellationToken cancellationToken)
    {
        engine.Validate(request);
        Console.WriteLine($"{request.Model}: search '{request.Strategy.Name}' for prompt {CallerInput.Quote(request.TextPrompt)}{(request.NegativePrompt is { } negative ? $" (negative {CallerInput.Quote(negative)})" : string.Empty)}, {request.Steps} DDIM steps (eta {request.Eta}), guidance {request.Guidance}, seed {request.Seed}, verifiers {(request.Verifiers.Count == 0 ? "none" : string.Join(",", request.Verifiers))}");
        var result = (await ProgressLine.WatchAsync([engine.Start(request, cancellationToken: cancellationToken)], SearchEstimator.Estimate(request).Nfe, cancellationToken).ConfigureAwait(false))[0];
        Console.WriteLine($"{"rank",4}  {"path",-14}  {"step",4}  {"score",8}");
        for (var i = 0; i < result.Candidates.Count; i++)
        {
            var candidate = result.Candidates[i];
            Console.WriteLine(FormattableString.Invariant($"{i + 1,4}  {candidate.Path,-14}  {candidate.StepIndex,4}  {candidate.Score,8:0.000}"));
        }

        var cost = result.Cost;
        Console.WriteLine(FormattableString.Invariant($"NFE {cost.Nfe} (independent runs: {cost.NfeIndependent}, saving {cost.Saving:P1}); encoder calls {cost.EncoderCalls} (cache hits {cost.EncoderCacheHits}), decoder calls {cost.DecoderCalls}, verifier calls {cost.VerifierCalls}"));
        Console.WriteLine(FormattableString.Invariant($"{cost.Batches} denoiser batches, mean {cost.MeanBatchSize:0.0} rows; wall {cost.WallTime.TotalSeconds:0.00} s"));
        if (result.BudgetLimited)
        {
            Console.WriteLine("budget-limited: the strategy stopped early and returned the best it had");
        }

        var shape = result.Candidates[0].Shape;
        var tiles = result.Candidates.Select((c, i) => new GridTile(c.Sample, result.Candidates.Count == 1 ? string.Empty : (i + 1).ToString(CultureInfo.InvariantCulture))).ToList();
        return PngEncoder.Encode(ImageGrid.Compose(tiles, shape.Dimensions[1], shape.Dimensions[2], (-1f, 1f), scale: 8, channels: shape.Dimensions[0]));
    }

    /// <summary>
    /// For each prompt, a single shot (one trajectory, no verifier) and the search's best from the same seed, all run
    /// at once so their steps batch together, each judged by the compositional judge when it can read the prompt.
    /// Returns a two-row grid (top: single shots, bottom: searched), each tile captioned with its prompt and verdict.
    /// </summary>
    public static async Task<byte[]> CompareAsync(SearchEngine engine, SearchRequest search, IReadOnlyList<string> prompts, CancellationToken cancellationToken)
    {
        var singles = prompts.Select(p => search with { TextPrompt = p, Strategy = new BestOfNStrategy(1), Verifiers = [], Budget = new SearchBudget(), Candidates = 1 });
        var requests = singles.Concat(prompts.Select(p => search with { TextPrompt = p, Candidates = 1 })).ToList();
        requests.ForEach(engine.Validate);
        Console.WriteLine($"{search.Model}: single shots against search '{search.Strategy.Name}' (verifiers {string.Join(",", search.Verifiers)}) for {prompts.Count} prompts, {search.Steps} DDIM steps (eta {search.Eta}), guidance {search.Guidance}, seed {search.Seed}");
        var runs = requests.Select(r => engine.Start(r, cancellationToken: cancellationToken)).ToList();
        var results = await ProgressLine.WatchAsync(runs, requests.Sum(r => SearchEstimator.Estimate(r).Nfe), cancellationToken).ConfigureAwait(false);

        var shape = results[0].Candidates[0].Shape;
        var verdicts = results.Select((r, i) => Verdict(r.Candidates[0], requests[i].TextPrompt!)).ToList();
        Console.WriteLine($"{"single",-10}  {"searched",-10}  {"score",7}  {"NFE",5}  prompt");
        for (var i = 0; i < prompts.Count; i++)
        {
            var searched = results[prompts.Count + i];
            Console.WriteLine(FormattableString.Invariant($"{verdicts[i].Text,-10}  {verdicts[prompts.Count + i].Text,-10}  {searched.Candidates[0].Score,7:0.000}  {searched.Cost.Nfe,5}  {CallerInput.Quote(prompts[i])}"));
        }

        if (verdicts.All(v => v.Distance is not null))
        {
            Console.WriteLine($"prompt matched: single shots {verdicts.Take(prompts.Count).Count(v => v.Distance == 0)}/{prompts.Count}, searched {verdicts.Skip(prompts.Count).Count(v => v.Distance == 0)}/{prompts.Count} (compositional judge)");
        }

        long singleNfe = results.Take(prompts.Count).Sum(r => r.Cost.Nfe), searchNfe = results.Skip(prompts.Count).Sum(r => r.Cost.Nfe);
        Console.WriteLine(FormattableString.Invariant($"NFE: single shots {singleNfe}, searched {searchNfe} ({(double)searchNfe / singleNfe:0.00}x); decoder calls {results.Sum(r => r.Cost.DecoderCalls)}, encoder calls {results.Sum(r => r.Cost.EncoderCalls)} (cache hits {results.Sum(r => r.Cost.EncoderCacheHits)})"));
        var width = shape.Dimensions[2] * TileScale / CharacterWidth;
        var tiles = results.Select((r, i) => new GridTile(
            r.Candidates[0].Sample,
            string.Join('\n', [.. Wrap(requests[i].TextPrompt!, width), $"{(i < prompts.Count ? "single" : search.Strategy.Name)}: {verdicts[i].Text}"]),
            verdicts[i].Distance switch { null => CaptionTone.Neutral, 0 => CaptionTone.Good, _ => CaptionTone.Bad })).ToList();
        return PngEncoder.Encode(ImageGrid.Compose(tiles, shape.Dimensions[1], shape.Dimensions[2], (-1f, 1f), scale: TileScale, columns: prompts.Count, channels: shape.Dimensions[0]));
    }

    private const int TileScale = 8;
    private const int CharacterWidth = 12; // ImageGrid draws a 3-pixel glyph and a 1-pixel space at scale 3

    /// <summary>The judge's verdict on a candidate: "match" or "off by d" (null distance when the prompt is not in the judge's grammar or the sample is not RGB).</summary>
    private static (string Text, int? Distance) Verdict(Candidate candidate, string prompt)
    {
        try
        {
            var distance = CompositionJudge.Judge(candidate.Sample, candidate.Shape.Dimensions[1], candidate.Shape.Dimensions[2], prompt).Distance;
            return (distance == 0 ? "match" : FormattableString.Invariant($"off by {distance}"), distance);
        }
        catch (InvalidRequestException)
        {
            return ("-", null);
        }
    }

    /// <summary>Breaks <paramref name="text"/> into lines of at most <paramref name="width"/> characters at spaces.</summary>
    internal static IEnumerable<string> Wrap(string text, int width)
    {
        var line = string.Empty;
        foreach (var word in text.Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            if (line.Length > 0 && line.Length + 1 + word.Length > width)
            {
                yield return line;
                line = string.Empty;
            }

            line = line.Length == 0 ? word : $"{line} {word}";
        }

        yield return line;
    }
}
