using System.Globalization;
using Value = Google.Protobuf.WellKnownTypes.Value;
using SearchOrchestrator.Processes;
using SearchOrchestrator.Protos.V1;
using SearchOrchestrator.Search;
using SearchOrchestrator.Strategies;

namespace SearchOrchestrator.Server.Grpc;

/// <summary>Maps the wire messages to Core's request and result types; no search logic lives here.</summary>
internal static class SearchRequestMapper
{
    /// <summary>The Core request; its strategy is built by name from <paramref name="strategies"/>.</summary>
    public static SearchRequest ToCore(GenerateRequest request, StrategyCatalog strategies)
    {
        if (string.IsNullOrEmpty(request.Model))
        {
            throw new InvalidRequestException("model", "model is required (see ListModels).");
        }

        if (string.IsNullOrEmpty(request.Condition) && request.Tokens.Count == 0 && !request.HasPrompt)
        {
            throw new InvalidRequestException("condition", "condition is required (see ModelInfo.conditions; masked models take prompt tokens or prompt text; pipelines and text models take prompt).");
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
            TextPrompt = request.HasPrompt ? request.Prompt : null,
            NegativePrompt = request.HasNegativePrompt ? request.NegativePrompt : null,
            AnswerLength = request.HasAnswerLength ? request.AnswerLength : null,
            Steps = steps,
            Guidance = request.HasGuidance ? request.Guidance : 1.0,
            Eta = request.Eta,
            Seed = request.Seed,
            Strategy = strategies.Create(name, parameters, steps),
            Verifiers = [.. request.Verifiers],
            LeaveOutFailedVerifiers = request.LeaveOutFailedVerifiers,
            Ensemble = request.Ensemble == EnsembleRule.WeightedSum ? Verifiers.EnsembleRule.WeightedSum : Verifiers.EnsembleRule.MeanRank,
            VerifierWeights = request.VerifierWeights.Count == 0 ? null : new Dictionary<string, double>(request.VerifierWeights),
            Budget = new SearchBudget
            {
                MaxNfe = budget is { MaxNfe: > 0 } ? budget.MaxNfe : null,
                MaxVerifierCalls = budget is { HasMaxVerifierCalls: true } ? budget.MaxVerifierCalls : null,
                MaxWallTime = budget is { MaxWallTimeMs: > 0 } ? TimeSpan.FromMilliseconds(budget.MaxWallTimeMs) : null,
                MaxDecoderCalls = budget is { HasMaxDecoderCalls: true } ? budget.MaxDecoderCalls : null,
            },
            Candidates = request.Candidates == 0 ? 1 : request.Candidates,
            PreviewSteps = !request.HasPreviewSteps ? null : request.PreviewSteps == 0 ? 1 : request.PreviewSteps,
            Sampler = Sampler(request.MaskedSampler),
            Prompt = request.Tokens.Count == 0 ? null : new TokenPrompt([.. request.Tokens], request.Clamped.Count == 0 ? null : [.. request.Clamped]),
        };
    }

    /// <summary>The masked sampler's settings from the message; unset fields keep the process defaults.</summary>
    private static SamplerSettings? Sampler(Protos.V1.MaskedSampler? sampler)
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
    public static string StrategyName(GenerateRequest request) => request.StrategyCase switch
    {
        GenerateRequest.StrategyOneofCase.None => StrategyNames.BestOfN,
        GenerateRequest.StrategyOneofCase.Named => request.Named.Name,
        var typed => GenerateRequest.Descriptor.FindFieldByNumber((int)typed).Name,
    };

    /// <summary>The strategy's name and the parameters the message sets: every parameter it has is passed, unset ones are left to their defaults.</summary>
    private static (string Name, Dictionary<string, string> Parameters) Strategy(GenerateRequest request)
    {
        var p = new Dictionary<string, string>(StringComparer.Ordinal);
        void Set(string key, bool has, IFormattable value)
        {
            if (has)
            {
                p[key] = value.ToString(null, CultureInfo.InvariantCulture);
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

        var name = StrategyName(request);
        switch (request.StrategyCase)
        {
            case GenerateRequest.StrategyOneofCase.BestOfN:
                Set("n", request.BestOfN.HasN, request.BestOfN.N);
                break;
            case GenerateRequest.StrategyOneofCase.SharedPrefix:
                Set("k", request.SharedPrefix.HasK, request.SharedPrefix.K);
                Set("fork_at", request.SharedPrefix.HasForkAt, request.SharedPrefix.ForkAt);
                Set("renoise", request.SharedPrefix.HasRenoise, request.SharedPrefix.Renoise);
                break;
            case GenerateRequest.StrategyOneofCase.Bfs:
                Set("particles", request.Bfs.HasParticles, request.Bfs.Particles);
                Steps("evaluate_at", request.Bfs.EvaluateAt);
                p["mode"] = request.Bfs.Prune ? "prune" : "resample";
                Set("temperature", request.Bfs.HasTemperature, request.Bfs.Temperature);
                Set("width", request.Bfs.HasWidth, request.Bfs.Width);
                Set("preview_steps", request.Bfs.HasPreviewSteps, request.Bfs.PreviewSteps);
                Set("renoise", request.Bfs.HasRenoise, request.Bfs.Renoise);
                break;
            case GenerateRequest.StrategyOneofCase.Dfs:
                Steps("evaluate_at", request.Dfs.EvaluateAt);
                Set("threshold", request.Dfs.HasThreshold, request.Dfs.Threshold);
                Set("recur_depth", request.Dfs.HasRecurDepth, request.Dfs.RecurDepth);
                Set("max_backtracks", request.Dfs.HasMaxBacktracks, request.Dfs.MaxBacktracks);
                Set("preview_steps", request.Dfs.HasPreviewSteps, request.Dfs.PreviewSteps);
                if (request.Dfs.HasJudge)
                {
                    p["judge"] = request.Dfs.Judge;
                }

                if (request.Dfs.HasEscalate)
                {
                    p["escalate"] = request.Dfs.Escalate ? "true" : "false";
                }

                break;
            case GenerateRequest.StrategyOneofCase.SearchOverPaths:
                Set("candidates", request.SearchOverPaths.HasCandidates, request.SearchOverPaths.Candidates);
                Set("continuations", request.SearchOverPaths.HasContinuations, request.SearchOverPaths.Continuations);
                Set("start_step", request.SearchOverPaths.HasStartStep, request.SearchOverPaths.StartStep);
                Set("forward", request.SearchOverPaths.HasForward, request.SearchOverPaths.Forward);
                Set("backward", request.SearchOverPaths.HasBackward, request.SearchOverPaths.Backward);
                Set("preview_steps", request.SearchOverPaths.HasPreviewSteps, request.SearchOverPaths.PreviewSteps);
                break;
            case GenerateRequest.StrategyOneofCase.ZeroOrder:
                Set("neighbours", request.ZeroOrder.HasNeighbours, request.ZeroOrder.Neighbours);
                Set("similarity", request.ZeroOrder.HasSimilarity, request.ZeroOrder.Similarity);
                Set("iterations", request.ZeroOrder.HasIterations, request.ZeroOrder.Iterations);
                break;
            case GenerateRequest.StrategyOneofCase.FkSteering:
                Set("particles", request.FkSteering.HasParticles, request.FkSteering.Particles);
                if (request.FkSteering.HasPotential)
                {
                    p["potential"] = request.FkSteering.Potential;
                }

                Set("lambda", request.FkSteering.HasLambda, request.FkSteering.Lambda);
                Set("resample_every", request.FkSteering.HasResampleEvery, request.FkSteering.ResampleEvery);
                p["adaptive"] = request.FkSteering.Adaptive ? "true" : "false";
                Set("preview_steps", request.FkSteering.HasPreviewSteps, request.FkSteering.PreviewSteps);
                Set("renoise", request.FkSteering.HasRenoise, request.FkSteering.Renoise);
                if (request.FkSteering.HasResampling)
                {
                    p["resampling"] = request.FkSteering.Resampling;
                }

                break;
            case GenerateRequest.StrategyOneofCase.Named:
                if (string.IsNullOrEmpty(name))
                {
                    throw new InvalidRequestException("named.name", "named.name is required: a registered strategy's name (see `searchorch strategies`).");
                }

                foreach (var (key, value) in request.Named.Parameters?.Fields ?? [])
                {
                    p[key] = Text(value, key);
                }

                break;
            default:
                p["n"] = "1";
                break;
        }

        return (name, p);
    }

    /// <summary>A <c>named.parameters</c> value as the text a strategy reads: a list is its items joined by commas.</summary>
    private static string Text(Value value, string key) => value.KindCase switch
    {
        Value.KindOneofCase.NumberValue => value.NumberValue.ToString("R", CultureInfo.InvariantCulture),
        Value.KindOneofCase.StringValue => value.StringValue,
        Value.KindOneofCase.BoolValue => value.BoolValue ? "true" : "false",
        Value.KindOneofCase.ListValue => string.Join(',', value.ListValue.Values.Select(v => v.KindCase == Value.KindOneofCase.ListValue
            ? throw new InvalidRequestException($"named.parameters.{key}", $"named.parameters.{key}: a list holds numbers, strings or true/false, not lists.")
            : Text(v, key))),
        _ => throw new InvalidRequestException($"named.parameters.{key}", $"named.parameters.{key} must be a number, a string, true/false or a list of them."),
    };
}
