using SearchOrchestrator.Processes;
using SearchOrchestrator.Search;

namespace SearchOrchestrator.Cli.Commands;

/// <summary>
/// <c>searchorch generate --model &lt;text model&gt; --prompt "…"</c>: a (searched) generation with a diffusion LLM.
/// Prints each candidate's answer (the tokens the search filled in, decoded) and the cost account.
/// </summary>
internal static class TextGenerate
{
    public static async Task<int> RunAsync(SearchEngine engine, MaskedProcess process, SearchRequest request, CancellationToken cancellationToken)
    {
        var sampler = request.Sampler ?? MaskedProcess.DefaultSettings;
        var text = request.TextPrompt ?? string.Empty;
        var promptTokens = process.Text!.Tokenizer.Encode(text).Count;
        var answer = process.TextPrompt(text, "prompt").Tokens.Count(t => t == process.MaskId);
        Console.WriteLine($"{request.Model}: search '{request.Strategy.Name}' for a prompt of {promptTokens} tokens and an answer of {answer}, {request.Steps} unmasking steps, sampler {sampler}, seed {request.Seed}, verifiers {(request.Verifiers.Count == 0 ? "none" : string.Join(",", request.Verifiers))}");
        var result = await engine.RunAsync(request, cancellationToken).ConfigureAwait(false);
        for (var i = 0; i < result.Candidates.Count; i++)
        {
            var candidate = result.Candidates[i];
            Console.WriteLine(FormattableString.Invariant($"candidate {i + 1} ({candidate.Path}, step {candidate.StepIndex}/{request.Steps}{(candidate.Score is { } s ? $", score {s:0.###}" : string.Empty)}): {Quote(process.Decode(candidate.Sample, text))}"));
        }

        var cost = result.Cost;
        Console.WriteLine(FormattableString.Invariant($"NFE {cost.Nfe} (independent runs: {cost.NfeIndependent}, saving {cost.Saving:P1}), {cost.Nfe / (double)request.Steps:0.00}x one trajectory"));
        Console.WriteLine(FormattableString.Invariant($"verifier calls {cost.VerifierCalls}; {cost.Batches} batches, mean {cost.MeanBatchSize:0.0} rows; compute {cost.ComputeTime.TotalSeconds:0.00} s, queued {cost.QueueTime.TotalSeconds:0.00} s, wall {cost.WallTime.TotalSeconds:0.00} s"));
        return 0;
    }

    private static string Quote(string? text) => "\"" + (text ?? string.Empty).Replace("\"", "\\\"", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal) + "\"";
}
