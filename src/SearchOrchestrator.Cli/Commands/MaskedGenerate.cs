using System.Globalization;
using SearchOrchestrator.Processes;
using SearchOrchestrator.Search;
using SearchOrchestrator.Verifiers;

namespace SearchOrchestrator.Cli.Commands;

/// <summary>
/// <c>searchorch generate --model sudoku --puzzle "53..7...."</c>: a (searched) generation with a masked model whose
/// prompt is puzzle text. Prints each candidate's grid, its violated constraints, and the cost account.
/// </summary>
internal static class MaskedGenerate
{
    /// <summary>Parses <c>key=value</c> sampler settings over the masked defaults (numbers where they parse, text otherwise).</summary>
    public static SamplerSettings? ParseSampler(IReadOnlyList<string> values)
    {
        if (values.Count == 0)
        {
            return null;
        }

        var settings = MaskedProcess.DefaultSettings;
        foreach (var value in values)
        {
            var split = value.IndexOf('=', StringComparison.Ordinal);
            if (split <= 0)
            {
                throw new InvalidRequestException("sampler", $"--sampler must be key=value (e.g. temperature=0.7, policy=random), got '{value}'.");
            }

            var (key, text) = (value[..split].Trim(), value[(split + 1)..].Trim());
            settings = double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var number)
                ? settings.With(key, number)
                : settings.With(key, text);
        }

        return settings;
    }

    public static async Task<int> RunAsync(SearchEngine engine, MaskedProcess process, SearchRequest request, CancellationToken cancellationToken)
    {
        var puzzle = Sudoku.Parse(request.Condition, "puzzle");
        var sampler = request.Sampler ?? MaskedProcess.DefaultSettings;
        Console.WriteLine($"{request.Model}: search '{request.Strategy.Name}' for puzzle with {puzzle.Count(d => d != 0)} givens, {request.Steps} unmasking steps, sampler {sampler}, seed {request.Seed}, verifiers {string.Join(",", request.Verifiers)}");
        Console.WriteLine(Sudoku.Render([.. puzzle.Select(d => (float)d)]));
        var result = await engine.RunAsync(request, cancellationToken).ConfigureAwait(false);
        for (var i = 0; i < result.Candidates.Count; i++)
        {
            var candidate = result.Candidates[i];
            var check = Sudoku.Check(candidate.Sample, puzzle);
            Console.WriteLine(FormattableString.Invariant($"candidate {i + 1} ({candidate.Path}, step {candidate.StepIndex}/{request.Steps}): {check.Violations} violated constraints{(check.Solved ? ", solved" : string.Empty)}{(candidate.Score is { } s ? $", score {s:0.###}" : string.Empty)}"));
            Console.WriteLine(Sudoku.Render(candidate.Sample));
            Console.WriteLine(process.Decode(candidate.Sample));
        }

        var cost = result.Cost;
        Console.WriteLine(FormattableString.Invariant($"NFE {cost.Nfe} (independent runs: {cost.NfeIndependent}, saving {cost.Saving:P1}), {cost.Nfe / (double)request.Steps:0.00}x one trajectory"));
        Console.WriteLine(FormattableString.Invariant($"verifier calls {cost.VerifierCalls}; {cost.Batches} batches, mean {cost.MeanBatchSize:0.0} rows; compute {cost.ComputeTime.TotalSeconds:0.00} s, queued {cost.QueueTime.TotalSeconds:0.00} s, wall {cost.WallTime.TotalSeconds:0.00} s"));
        if (result.BudgetLimited)
        {
            Console.WriteLine("budget-limited: the strategy stopped early and returned the best it had");
        }

        return result.Candidates.Count > 0 && Sudoku.Check(result.Candidates[0].Sample, puzzle).Solved ? 0 : 1;
    }
}
