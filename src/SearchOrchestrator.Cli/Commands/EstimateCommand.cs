using System.CommandLine;
using System.Globalization;
using SearchOrchestrator.Search;
using SearchOrchestrator.Strategies;

namespace SearchOrchestrator.Cli.Commands;

/// <summary>
/// <c>searchorch estimate</c>: what a search would spend (planned NFE, independent-run NFE, the multiplier m), worked
/// out from its request without running it, so budgets can be sized first.
/// </summary>
internal static class EstimateCommand
{
    public static Command Create()
    {
        var common = new CommonOptions();
        var model = new Option<string>("--model") { Description = "The denoiser, by name.", DefaultValueFactory = _ => "counting" };
        var condition = new Option<string?>("--condition") { Description = "The condition label (default: the model's first), or a masked model's puzzle text (default: none)." };
        var steps = new Option<int>("--steps") { Description = "Sampling steps N.", DefaultValueFactory = _ => 50 };
        var guidance = new Option<double>("--guidance") { Description = "Classifier-free guidance scale (1 = none).", DefaultValueFactory = _ => CliDefaults.Guidance };
        var eta = new Option<double>("--eta") { Description = "DDIM η; at 0 every fork also renoises its children one step.", DefaultValueFactory = _ => CliDefaults.Eta };
        var strategy = new Option<string>("--strategy") { Description = $"Search strategy: {string.Join(", ", StrategyNames.All)}, or a plug-in's (see 'searchorch strategies').", Required = true };
        var parameters = new Option<string[]>("--param") { Description = "A strategy parameter as key=value (repeatable); see 'searchorch strategies'." };
        var verifier = new Option<string?>("--verifier") { Description = "Verifiers, comma-separated (checked like generate's; default: the model's own, count-verifier or sudoku-constraints)." };
        var maxNfe = new Option<long?>("--max-nfe") { Description = "Budget: the most denoiser evaluations the search may spend." };
        var command = new Command("estimate", "Work out what a search would spend — planned NFE, independent-run NFE, multiplier m — without running it.")
        {
            model, condition, steps, guidance, eta, strategy, parameters, verifier, maxNfe,
        };
        common.AddTo(command);
        command.SetAction((parse, cancellationToken) => CommandErrors.RunAsync(async () =>
        {
            await using var host = common.CreateHost(parse, warmUp: false);
            var engine = host.Engine;
            var denoiser = host.Repository.GetDenoiser(parse.GetValue(model)!);
            var n = parse.GetValue(steps);
            var request = new SearchRequest
            {
                Model = denoiser.Description.Name,
                Condition = parse.GetValue(condition) ?? denoiser.Description.Conditions.Labels.FirstOrDefault() ?? string.Empty,
                Steps = n,
                Guidance = parse.GetValue(guidance),
                Eta = parse.GetValue(eta),
                Strategy = host.Strategies.Create(parse.GetValue(strategy)!, ParseParameters(parse.GetValue(parameters) ?? []), n),
                Verifiers = [.. (parse.GetValue(verifier) ?? CliDefaults.Verifier(denoiser.Description)).Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)],
                Budget = new SearchBudget { MaxNfe = parse.GetValue(maxNfe) },
            };
            Console.WriteLine(Describe(engine.Estimate(request)));
            return 0;
        }));
        return command;
    }

    /// <summary>The estimate as the console shows it.</summary>
    internal static string Describe(SearchEstimate e)
    {
        static string Span(long min, long max) => min == max
            ? min.ToString(CultureInfo.InvariantCulture)
            : FormattableString.Invariant($"{min} .. {max}");
        var lines = new List<string>
        {
            FormattableString.Invariant($"{e.Strategy}, N = {e.Steps}: {(e.Exact ? "exact" : "bounds (adaptive)")}"),
            FormattableString.Invariant($"NFE              {Span(e.NfeMin, e.Nfe)}{(e.BudgetLimited ? " (capped by --max-nfe)" : string.Empty)}"),
            FormattableString.Invariant($"independent NFE  {Span(e.NfeIndependentMin, e.NfeIndependent)}"),
            e.Exact
                ? FormattableString.Invariant($"multiplier m     {e.Multiplier:0.###} x one trajectory (saving {1 - ((double)e.Nfe / e.NfeIndependent):P1} against independent runs)")
                : FormattableString.Invariant($"multiplier m     {e.MultiplierMin:0.###} .. {e.Multiplier:0.###} x one trajectory"),
            $"basis            {e.Basis}",
        };
        if (e.PreviewNfe > 0)
        {
            lines.Add(FormattableString.Invariant($"preview NFE      at most {e.PreviewNfe} of the NFE (lookahead: mid-trajectory nodes scored on previews)"));
        }

        if (e.Calibrates)
        {
            lines.Add(FormattableString.Invariant($"calibration NFE  {e.CalibrationNfe} (fork_at auto: the first request per model, condition and sampler settings calibrates first, within the budget)"));
        }

        return string.Join(Environment.NewLine, lines);
    }

    private static Dictionary<string, string> ParseParameters(string[] values)
    {
        var parameters = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var value in values)
        {
            var at = value.IndexOf('=', StringComparison.Ordinal);
            if (at <= 0)
            {
                throw new InvalidRequestException("param", $"--param must be key=value, got '{value}'.");
            }

            parameters[value[..at].Trim()] = value[(at + 1)..].Trim();
        }

        return parameters;
    }
}
