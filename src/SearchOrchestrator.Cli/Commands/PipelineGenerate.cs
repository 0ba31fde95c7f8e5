using System.Globalization;
using SearchOrchestrator.Imaging;
using SearchOrchestrator.Search;

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
}
