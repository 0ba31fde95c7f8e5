using System.Globalization;
using SearchOrchestrator.Processes;
using SearchOrchestrator.Protos.V1;
using SearchOrchestrator.Search;
using SearchOrchestrator.Strategies;

namespace SearchOrchestrator.Server.Grpc;

/// <summary>Maps the wire messages to Core's request and result types; no search logic lives here.</summary>
internal static class SearchRequestMapper
{
    public static SearchRequest ToCore(GenerateRequest request)
    {
        if (string.IsNullOrEmpty(request.Model))
        {
            throw new InvalidRequestException("model", "model is required (see ListModels).");
        }

        if (string.IsNullOrEmpty(request.Condition) && request.Tokens.Count == 0)
        {
            throw new InvalidRequestException("condition", "condition is required (see ModelInfo.conditions; masked models take prompt tokens or prompt text).");
        }

        if (request.Clamped.Count > 0 && request.Tokens.Count == 0)
        {
            throw new InvalidRequestException("clamped", "clamped positions refer to prompt tokens; set tokens too.");
        }

        if (request.Steps < 0)
        {
            throw new InvalidRequestException("steps", $"steps must be at least 1 (0 means the default, 50), got {request.Steps}.");
        }

        for (var i = 0; i < request.Verifiers.Count; i++)
        {
            if (string.IsNullOrWhiteSpace(request.Verifiers[i]))
            {
                throw new InvalidRequestException("verifiers", $"verifiers[{i}] is empty; name a verifier (see ListModels) or leave the entry out.");
            }
        }

        // An enum value this server does not know arrives as its number; it must not fall back to the default.
        if (!Enum.IsDefined(request.Ensemble))
        {
            throw new InvalidRequestException("ensemble", $"ensemble {(int)request.Ensemble} is not an EnsembleRule; expected ENSEMBLE_RULE_MEAN_RANK (0) or ENSEMBLE_RULE_WEIGHTED_SUM (1).");
        }

        var steps = request.Steps == 0 ? 50 : request.Steps;
        var (name, parameters) = Strategy(request);
        var budget = request.Budget;
        if (budget is not null && (budget.MaxNfe < 0 || budget.MaxWallTimeMs < 0))
        {
            throw new InvalidRequestException("budget", $"budget limits must not be negative (0 = no limit), got max_nfe {budget.MaxNfe} and max_wall_time_ms {budget.MaxWallTimeMs}.");
        }

        return new SearchRequest
        {
            Model = request.Model,
            Condition = request.Condition,
            Steps = steps,
            Guidance = request.HasGuidance ? request.Guidance : 1.0,
            Eta = request.Eta,
            Seed = request.Seed,
            Strategy = StrategyCatalog.Create(name, parameters, steps),
            Verifiers = [.. request.Verifiers],
            Ensemble = request.Ensemble == EnsembleRule.WeightedSum ? Verifiers.EnsembleRule.WeightedSum : Verifiers.EnsembleRule.MeanRank,
            VerifierWeights = request.VerifierWeights.Count == 0 ? null : new Dictionary<string, double>(request.VerifierWeights),
            Budget = new SearchBudget
            {
                MaxNfe = budget is { MaxNfe: > 0 } ? budget.MaxNfe : null,
                MaxVerifierCalls = budget is { HasMaxVerifierCalls: true } ? budget.MaxVerifierCalls : null,
                MaxWallTime = budget is { MaxWallTimeMs: > 0 } ? TimeSpan.FromMilliseconds(budget.MaxWallTimeMs) : null,
            },
            Candidates = request.Candidates == 0 ? 1 : request.Candidates,
            Sampler = Sampler(request.MaskedSampler),
            Prompt = request.Tokens.Count == 0 ? null : new TokenPrompt([.. request.Tokens], request.Clamped.Count == 0 ? null : [.. request.Clamped]),
        };
    }

    /// <summary>The masked sampler's settings from the message; unset fields keep the process defaults.</summary>
    private static SamplerSettings? Sampler(MaskedSampler? sampler)
    {
        if (sampler is null)
        {
            return null;
        }

        var settings = MaskedProcess.DefaultSettings;
        if (sampler.Policy.Length > 0)
        {
            settings = settings.With(SamplerParameters.Policy, sampler.Policy);
        }

        if (sampler.Remask.Length > 0)
        {
            settings = settings.With(SamplerParameters.Remask, sampler.Remask);
        }

        settings = settings.With(SamplerParameters.Temperature, sampler.Temperature);
        if (sampler.TopK != 0)
        {
            settings = settings.With(SamplerParameters.TopK, sampler.TopK);
        }

        if (sampler.TopP != 0)
        {
            settings = settings.With(SamplerParameters.TopP, sampler.TopP);
        }

        if (sampler.Threshold != 0)
        {
            settings = settings.With(SamplerParameters.Threshold, sampler.Threshold);
        }

        return settings;
    }

    /// <summary>The registered name of the request's strategy (for metrics and logs).</summary>
    public static string StrategyName(GenerateRequest request) => Strategy(request).Name;

    /// <summary>The strategy's name and the parameters the message sets (zero means "use the default").</summary>
    private static (string Name, Dictionary<string, string> Parameters) Strategy(GenerateRequest request)
    {
        var p = new Dictionary<string, string>();
        void Set(string key, double value)
        {
            if (value != 0)
            {
                p[key] = value.ToString(CultureInfo.InvariantCulture);
            }
        }

        void Steps(string key, IEnumerable<int> values)
        {
            var list = values.ToList();
            if (list.Count > 0)
            {
                p[key] = string.Join(',', list);
            }
        }

        switch (request.StrategyCase)
        {
            case GenerateRequest.StrategyOneofCase.BestOfN:
                Set("n", request.BestOfN.N);
                return (StrategyNames.BestOfN, p);
            case GenerateRequest.StrategyOneofCase.SharedPrefix:
                Set("k", request.SharedPrefix.K);
                p["fork_at"] = request.SharedPrefix.HasForkAt ? request.SharedPrefix.ForkAt.ToString(CultureInfo.InvariantCulture) : "auto";
                return (StrategyNames.SharedPrefix, p);
            case GenerateRequest.StrategyOneofCase.Bfs:
                Set("particles", request.Bfs.Particles);
                Steps("evaluate_at", request.Bfs.EvaluateAt);
                p["mode"] = request.Bfs.Prune ? "prune" : "resample";
                Set("temperature", request.Bfs.Temperature);
                Set("width", request.Bfs.Width);
                return (StrategyNames.Bfs, p);
            case GenerateRequest.StrategyOneofCase.Dfs:
                Steps("evaluate_at", request.Dfs.EvaluateAt);
                Set("threshold", request.Dfs.Threshold);
                Set("recur_depth", request.Dfs.RecurDepth);
                Set("max_backtracks", request.Dfs.MaxBacktracks);
                return (StrategyNames.Dfs, p);
            case GenerateRequest.StrategyOneofCase.SearchOverPaths:
                Set("candidates", request.SearchOverPaths.Candidates);
                Set("continuations", request.SearchOverPaths.Continuations);
                Set("start_step", request.SearchOverPaths.StartStep);
                Set("forward", request.SearchOverPaths.Forward);
                Set("backward", request.SearchOverPaths.Backward);
                return (StrategyNames.SearchOverPaths, p);
            case GenerateRequest.StrategyOneofCase.ZeroOrder:
                Set("neighbours", request.ZeroOrder.Neighbours);
                Set("similarity", request.ZeroOrder.Similarity);
                Set("iterations", request.ZeroOrder.Iterations);
                return (StrategyNames.ZeroOrder, p);
            case GenerateRequest.StrategyOneofCase.FkSteering:
                Set("particles", request.FkSteering.Particles);
                if (request.FkSteering.Potential.Length > 0)
                {
                    p["potential"] = request.FkSteering.Potential;
                }

                Set("lambda", request.FkSteering.Lambda);
                Set("resample_every", request.FkSteering.ResampleEvery);
                p["adaptive"] = request.FkSteering.Adaptive ? "true" : "false";
                return (StrategyNames.FkSteering, p);
            default:
                p["n"] = "1";
                return (StrategyNames.BestOfN, p);
        }
    }
}
