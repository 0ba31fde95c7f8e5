using SearchOrchestrator.Processes;
using SearchOrchestrator.Tensors;
using SearchOrchestrator.Verifiers;

namespace SearchOrchestrator.Search;

/// <summary>A searched generation: what to generate, how to search, how to judge, and what it may spend.</summary>
public sealed record SearchRequest
{
    /// <summary>The denoiser, by name.</summary>
    public required string Model { get; init; }

    /// <summary>The condition label (e.g. <c>7</c>) of a class-conditioned model; empty for a pipeline, which takes <see cref="TextPrompt"/>.</summary>
    public string Condition { get; init; } = string.Empty;

    /// <summary>A text-to-image pipeline's prompt; null for other models. Verifiers receive it as the condition label.</summary>
    public string? TextPrompt { get; init; }

    /// <summary>A pipeline's negative prompt: what guidance steers away from (null: the empty prompt).</summary>
    public string? NegativePrompt { get; init; }

    /// <summary>A text model's answer span in tokens, after the prompt (null: the model's default, <see cref="TextLayout.AnswerLength"/>).</summary>
    public int? AnswerLength { get; init; }

    /// <summary>N, the sampling steps. Default 50.</summary>
    public int Steps { get; init; } = 50;

    /// <summary>Classifier-free guidance scale (1 = none). Default 1.</summary>
    public double Guidance { get; init; } = 1.0;

    /// <summary>DDIM η in [0, 1]. Default 0 (forks then renoise their children).</summary>
    public double Eta { get; init; }

    /// <summary>
    /// The sampler and its settings (e.g. masked: policy, temperature, top_k, top_p). Null means the process's default:
    /// DDIM with <see cref="Eta"/> for gaussian models, confidence-ordered most-likely tokens for masked ones.
    /// </summary>
    public SamplerSettings? Sampler { get; init; }

    /// <summary>Masked models: the token prompt and its clamped positions (a puzzle's givens). Null for gaussian models.</summary>
    public TokenPrompt? Prompt { get; init; }

    /// <summary>The request seed; every node's noise is keyed by it and the node's path.</summary>
    public ulong Seed { get; init; }

    /// <summary>The search strategy, configured.</summary>
    public required ISearchStrategy Strategy { get; init; }

    /// <summary>Verifier names; empty means no verification (only strategies that do not need scores accept that).</summary>
    public IReadOnlyList<string> Verifiers { get; init; } = [];

    /// <summary>How several verifiers combine. Default mean rank.</summary>
    public EnsembleRule Ensemble { get; init; } = EnsembleRule.MeanRank;

    /// <summary>Per-verifier weights for <see cref="EnsembleRule.WeightedSum"/> (default 1 each).</summary>
    public IReadOnlyDictionary<string, double>? VerifierWeights { get; init; }

    /// <summary>
    /// When a remote verifier (kserve or worker) fails or times out, leave it out of the ensemble for the rest of the
    /// search (the result says so in <see cref="SearchResult.VerifiersLeftOut"/>) instead of failing the search. Default false.
    /// </summary>
    public bool LeaveOutFailedVerifiers { get; init; }

    /// <summary>The most the search may spend. Default: no limit.</summary>
    public SearchBudget Budget { get; init; } = new();

    /// <summary>How many of the best candidates to return. Default 1.</summary>
    public int Candidates { get; init; } = 1;

    /// <summary>How many steps a fork under η = 0 renoises its children back. Default 1.</summary>
    public int ForkRenoiseSteps { get; init; } = 1;

    /// <summary>
    /// j, how a strategy that does not set its own <c>preview_steps</c> scores mid-trajectory nodes: 1 scores the raw
    /// x0-prediction; j &gt; 1 scores a preview, j deterministic steps from the node's state to a clean sample (DSearch's
    /// lookahead), whose NFE is counted. Null: each strategy's own default (bfs 3, dfs 3, search_over_paths 2, else 1).
    /// </summary>
    public int? PreviewSteps { get; init; }

    /// <summary>What the strategy's <see cref="ISearchStrategy.Plan"/> depends on besides its own parameters: N, the renoised steps of a fork (none under η &gt; 0) and j.</summary>
    public PlanContext ToPlanContext() => new(Steps, Eta > 0 ? 0 : Math.Max(1, ForkRenoiseSteps), PreviewSteps);
}

/// <summary>One returned sample.</summary>
public sealed record Candidate
{
    /// <summary>The node's number in its search.</summary>
    public required int NodeId { get; init; }

    /// <summary>The node's path in the tree (<c>0/2/1</c>).</summary>
    public required string Path { get; init; }

    /// <summary>The sample (the finished state, or the latest x0-prediction of a budget-limited node).</summary>
    public required float[] Sample { get; init; }

    /// <summary>The shape of the sample.</summary>
    public required SampleShape Shape { get; init; }

    /// <summary>True when the trajectory reached step N.</summary>
    public required bool Complete { get; init; }

    /// <summary>The step index the node reached.</summary>
    public required int StepIndex { get; init; }

    /// <summary>The combined score of its final verification, or null if it was never verified.</summary>
    public double? Score { get; init; }

    /// <summary>Each verifier's final score, by name.</summary>
    public required IReadOnlyDictionary<string, float> Scores { get; init; }
}

/// <summary>The result of a search: the best candidates, best first, and what they cost.</summary>
public sealed record SearchResult
{
    /// <summary>The strategy that ran.</summary>
    public required string Strategy { get; init; }

    /// <summary>The best candidates, best first.</summary>
    public required IReadOnlyList<Candidate> Candidates { get; init; }

    /// <summary>The cost account.</summary>
    public required CostAccount Cost { get; init; }

    /// <summary>True when the budget stopped the strategy before it finished what it planned.</summary>
    public required bool BudgetLimited { get; init; }

    /// <summary>The fork step the strategy used, when it forks at one (resolved from <c>fork_at: auto</c> if asked).</summary>
    public int? ForkStep { get; init; }

    /// <summary>Remote verifiers that failed and were left out of the ensemble (only with <see cref="SearchRequest.LeaveOutFailedVerifiers"/>).</summary>
    public IReadOnlyList<LeftOutVerifier> VerifiersLeftOut { get; init; } = [];
}
