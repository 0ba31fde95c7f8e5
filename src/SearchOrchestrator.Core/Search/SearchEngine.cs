using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using SearchOrchestrator.Denoising;
using SearchOrchestrator.Diagnostics;
using SearchOrchestrator.Scheduling;
using SearchOrchestrator.Verifiers;
using SearchOrchestrator.Workers;

namespace SearchOrchestrator.Search;

/// <summary>
/// Runs searched generations. Owns one <see cref="DenoiserBatcher"/> per denoiser and one
/// <see cref="VerifierBatcher"/> per verifier, shared by every search, so steps from every branch of every request
/// meet in the same batches; a text-to-image pipeline's text encoder (with its prompt cache) and decoder get batchers of
/// their own too. Each request is validated completely before anything is queued.
/// </summary>
public sealed class SearchEngine : IAsyncDisposable
{
    private readonly IModelProvider _models;
    private readonly BatchingOptions _batching;
    private readonly TimeProvider _time;
    private readonly ConcurrentDictionary<IDenoiser, Lazy<DenoiserBatcher>> _denoisers = new();
    private readonly ConcurrentDictionary<IVerifier, Lazy<VerifierBatcher>> _verifiers = new();
    private readonly ConcurrentDictionary<DenoiserBatcher, LocalBackend> _locals = new();
    private readonly ConcurrentDictionary<PipelineStages, Lazy<PipelineRuntime>> _pipelines = new();
    private readonly WorkerPool? _workers;
    private readonly ILogger _logger;

    /// <summary>Creates the engine; with <paramref name="workers"/>, steps may run on remote workers too.</summary>
    /// <param name="models">The models searches run.</param>
    /// <param name="batching">How the batchers form batches.</param>
    /// <param name="time">The clock budgets and batch delays are measured with.</param>
    /// <param name="workers">Remote backends steps may run on besides this process.</param>
    /// <param name="logger">Where searches log replay and refused work.</param>
    public SearchEngine(IModelProvider models, BatchingOptions? batching = null, TimeProvider? time = null, WorkerPool? workers = null, ILogger<SearchEngine>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(models);
        _models = models;
        _batching = batching ?? new BatchingOptions();
        var failures = _batching.Validate();
        if (failures.Count > 0)
        {
            throw new ArgumentException(string.Join(" ", failures), nameof(batching));
        }

        _time = time ?? TimeProvider.System;
        _workers = workers;
        _logger = logger ?? (ILogger)NullLogger.Instance;
        Calibration = new ForkCalibration(this);
    }

    /// <summary>The batcher every search (and a worker's remote callers) share for <paramref name="denoiser"/>.</summary>
    internal DenoiserBatcher BatcherFor(IDenoiser denoiser) =>
        _denoisers.GetOrAdd(denoiser, d => new Lazy<DenoiserBatcher>(() => new DenoiserBatcher(d, _batching, _time))).Value;

    /// <summary>The batcher every search (and a worker's remote callers) share for <paramref name="verifier"/>.</summary>
    internal VerifierBatcher BatcherFor(IVerifier verifier) =>
        _verifiers.GetOrAdd(verifier, v => new Lazy<VerifierBatcher>(() => new VerifierBatcher(v, _batching, _time))).Value;

    /// <summary>The fork-step calibration behind <c>fork_at: auto</c>, cached per model, condition and sampler settings.</summary>
    internal ForkCalibration Calibration { get; }

    /// <summary>Validates <paramref name="request"/>, runs its strategy, and returns the best candidates with the cost account.</summary>
    /// <exception cref="InvalidRequestException">A field of the request is wrong; nothing was queued.</exception>
    /// <exception cref="ModelNotFoundException">The model or a verifier is not served.</exception>
    /// <exception cref="VerifierFailedException">A verifier threw or returned a non-finite score.</exception>
    public Task<SearchResult> RunAsync(SearchRequest request, CancellationToken cancellationToken = default) =>
        Start(request, recordEvents: false, cancellationToken).Completion;

    /// <summary>
    /// Validates <paramref name="request"/> (throwing before anything is queued) and starts it; the returned run
    /// reports progress while it goes and completes with the result.
    /// </summary>
    /// <exception cref="InvalidRequestException">A field of the request is wrong; nothing was queued.</exception>
    /// <exception cref="ModelNotFoundException">The model or a verifier is not served.</exception>
    /// <param name="request">The search.</param>
    /// <param name="recordEvents">Keep the tree's events (bounded) for <see cref="SearchRun.TakeEvents"/>.</param>
    /// <param name="cancellationToken">Stops the search.</param>
    public SearchRun Start(SearchRequest request, bool recordEvents = false, CancellationToken cancellationToken = default)
    {
        var tree = CreateTree(request, recordEvents, leasePrompts: true);
        try
        {
            RequireBudgetForCalibration(request);
        }
        catch
        {
            tree.ReleaseAll();
            throw;
        }

        return new SearchRun(tree, RunTreeAsync(tree, request, cancellationToken));
    }

    /// <summary>The prompt cache every search of <paramref name="stages"/>' pipeline shares.</summary>
    internal PromptEmbeddingCache PromptsFor(PipelineStages stages) => PipelineFor(stages).Prompts;

    /// <summary>The step path of <paramref name="stages"/>' latent denoiser (condition ids are handles of <see cref="PromptsFor"/>), shared by every search and a worker's callers.</summary>
    internal IDenoiser DenoiserFor(PipelineStages stages) => PipelineFor(stages).Denoiser;

    /// <summary>The decoder batcher every search (and a worker's remote callers) share for <paramref name="stages"/>' pipeline.</summary>
    internal DecoderBatcher DecoderFor(PipelineStages stages) => PipelineFor(stages).Decoder;

    private PipelineRuntime PipelineFor(PipelineStages stages) =>
        _pipelines.GetOrAdd(stages, s => new Lazy<PipelineRuntime>(() => new PipelineRuntime(s, _batching, _time))).Value;

    private static async Task<SearchResult> RunTreeAsync(TrajectoryTree tree, SearchRequest request, CancellationToken cancellationToken)
    {
        await Task.Yield(); // the caller gets its run handle before the strategy starts
        var strategy = new KeyValuePair<string, object?>("strategy", request.Strategy.Name);
        var outcome = "error";
        SearchMetrics.ActiveSearches.Add(1, strategy);
        try
        {
            var result = await RunStrategyAsync(tree, request, cancellationToken).ConfigureAwait(false);
            outcome = result.BudgetLimited ? "budget_limited" : "ok";
            return result;
        }
        catch (OperationCanceledException)
        {
            outcome = "cancelled";
            throw;
        }
        finally
        {
            var cost = tree.Account();
            SearchMetrics.ActiveSearches.Add(-1, strategy);
            SearchMetrics.Searches.Add(1, strategy, new KeyValuePair<string, object?>("outcome", outcome));
            SearchMetrics.Nfe.Add(cost.Nfe + cost.CalibrationNfe, strategy);
            SearchMetrics.NfeSaved.Add(Math.Max(0, cost.NfeIndependent - cost.Nfe), strategy);
            SearchMetrics.VerifierCalls.Add(cost.VerifierCalls, strategy);
        }
    }

    private static async Task<SearchResult> RunStrategyAsync(TrajectoryTree tree, SearchRequest request, CancellationToken cancellationToken)
    {
        try
        {
            var outcome = await request.Strategy.RunAsync(tree, cancellationToken).ConfigureAwait(false);
            var finalists = outcome.Candidates.Select(tree.Own).Where(n => !n.IsPruned && n.HasPrediction).Distinct().ToList();
            await tree.MaterializeAsync(finalists, cancellationToken).ConfigureAwait(false);
            if (tree.Verifiers.Count > 0)
            {
                // Every returned candidate is ranked on a score of its final state.
                var stale = finalists.Where(n => n.ScoredAtStep != n.StepIndex).ToList();
                if (stale.Count > 0)
                {
                    await tree.VerifyAsync(stale, cancellationToken).ConfigureAwait(false);
                }
            }

            var chosen = finalists
                .OrderByDescending(n => n.IsComplete)
                .ThenByDescending(n => n.ScoredAtStep == n.StepIndex ? n.Score ?? double.NegativeInfinity : double.NegativeInfinity)
                .ThenBy(n => n.Id)
                .Take(request.Candidates)
                .ToList();
            if (tree.Decoding is { } decoding)
            {
                // A pipeline returns images: decode the candidates not decoded at their step, out of the calls held back for them.
                tree.Ledger.AddHeldDecoderCalls(chosen.Count(n => n.Pixels is null));
                await tree.DecodeAsync(chosen, cancellationToken).ConfigureAwait(false);
            }

            var ranked = chosen
                .Select(n => new Candidate
                {
                    NodeId = n.Id,
                    Path = n.Path,
                    Sample = tree.Decoding is null ? n.Prediction!.Value[..tree.SampleShape.ElementCount].ToArray() : n.Pixels!,
                    Shape = tree.Decoding?.Decoder.Description.ImageShape ?? tree.SampleShape,
                    Complete = n.IsComplete,
                    StepIndex = n.StepIndex,
                    Score = n.ScoredAtStep == n.StepIndex ? n.Score : null,
                    Scores = new Dictionary<string, float>(n.Scores),
                })
                .ToList();
            return new SearchResult
            {
                Strategy = request.Strategy.Name,
                Candidates = ranked,
                Cost = tree.Account(),
                BudgetLimited = tree.BudgetLimited || ranked.Any(c => !c.Complete),
                ForkStep = outcome.ForkStep,
                VerifiersLeftOut = tree.Ledger.VerifiersLeftOut,
            };
        }
        finally
        {
            tree.ReleaseAll();
        }
    }

    /// <summary>Checks every field of <paramref name="request"/> as <see cref="RunAsync"/> would, without running it.</summary>
    /// <exception cref="InvalidRequestException">A field of the request is wrong.</exception>
    /// <exception cref="ModelNotFoundException">The model or a verifier is not served.</exception>
    public void Validate(SearchRequest request) => CreateTree(request);

    /// <summary>
    /// What <paramref name="request"/> will spend, validated as <see cref="RunAsync"/> would: its strategy's plan and,
    /// for <c>fork_at: auto</c> on settings not yet calibrated here, the calibration it runs first.
    /// </summary>
    /// <exception cref="InvalidRequestException">A field of the request is wrong.</exception>
    /// <exception cref="ModelNotFoundException">The model or a verifier is not served.</exception>
    public SearchEstimate Estimate(SearchRequest request)
    {
        Validate(request);
        RequireBudgetForCalibration(request);
        var estimate = SearchEstimator.Estimate(request, Calibration.NfeToCalibrate(request));
        if (_models.GetStages(request.Model) is not { } stages)
        {
            return estimate;
        }

        // Returned images are decoded once each; a pixel verifier decodes each node step it scores (at most one per NFE).
        var returned = Math.Min(request.Candidates, Math.Max(1, estimate.NfeIndependent / estimate.Steps));
        var pixels = request.Verifiers.Select(_models.GetVerifier).Any(v => !stages.Description.SampleShape.Equals(v.SampleShape));
        var decoder = returned + (pixels ? estimate.Nfe : 0);
        return estimate with
        {
            EncoderCalls = PromptsFor(stages).CountUnencoded([request.TextPrompt!, request.NegativePrompt ?? string.Empty]),
            DecoderCalls = request.Budget.MaxDecoderCalls is { } max ? Math.Min(decoder, max) : decoder,
        };
    }

    /// <summary>Stops every batcher; queued work that has not run fails.</summary>
    public async ValueTask DisposeAsync()
    {
        Calibration.Dispose();
        foreach (var batcher in _denoisers.Values.Where(l => l.IsValueCreated))
        {
            await batcher.Value.DisposeAsync().ConfigureAwait(false);
        }

        foreach (var batcher in _verifiers.Values.Where(l => l.IsValueCreated))
        {
            await batcher.Value.DisposeAsync().ConfigureAwait(false);
        }

        foreach (var pipeline in _pipelines.Values.Where(l => l.IsValueCreated))
        {
            await pipeline.Value.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>A calibration cut short by the budget measures nothing: the budget must hold all of it.</summary>
    private void RequireBudgetForCalibration(SearchRequest request)
    {
        var calibration = Calibration.NfeToCalibrate(request);
        if (request.Budget.MaxNfe is { } max && calibration > max)
        {
            throw new InvalidRequestException("budget.max_nfe", $"fork_at: auto first calibrates this model, condition and sampler, which spends {calibration} NFE, more than budget.max_nfe {max}; raise the budget or give fork_at a step.");
        }
    }

    /// <summary>
    /// Validates every field of the request and assembles its tree; queues nothing. <paramref name="leasePrompts"/>: a
    /// pipeline's tree holds its prompts' cache entries (encoded at its first step) until <see cref="TrajectoryTree.ReleaseAll"/>;
    /// a tree that only validates holds none.
    /// </summary>
    internal TrajectoryTree CreateTree(SearchRequest request, bool recordEvents = false, bool leasePrompts = false)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (request.Strategy is null)
        {
            throw new InvalidRequestException("strategy", "a strategy is required.");
        }

        if (request.Candidates < 1)
        {
            throw new InvalidRequestException("candidates", $"candidates must be at least 1, got {request.Candidates}.");
        }

        if (request.PreviewSteps is < 1)
        {
            throw new InvalidRequestException("preview_steps", $"preview_steps must be at least 1 (1 scores the raw x0-prediction), got {request.PreviewSteps}.");
        }

        if (request.ForkRenoiseSteps < 1)
        {
            throw new InvalidRequestException("fork_renoise_steps", $"fork_renoise_steps must be at least 1, got {request.ForkRenoiseSteps}.");
        }

        request.Budget.Validate();
        var stages = _models.GetStages(request.Model);
        var pipeline = stages is null ? null : PipelineFor(stages);
        var denoiser = pipeline?.Denoiser ?? _models.GetDenoiser(request.Model);
        var description = denoiser.Description;
        var conditionId = 0L;
        if (stages is null)
        {
            RequireNoTextPrompt(request, description);
            conditionId = description.Conditions.Resolve(request.Condition, description.Name);
            ClassifierFreeGuidance.Validate(request.Guidance, description.Conditions, description.Name);
        }
        else
        {
            ValidatePipelineRequest(request, stages);
            ClassifierFreeGuidance.Validate(request.Guidance);
        }

        var schedule = description.Process.Steps(request.Steps);
        // A text model (a diffusion LLM) lays its text prompt into its token sequence; other masked models parse the condition.
        if (request.AnswerLength is not null && (description.Process is not Processes.MaskedProcess { Text: not null } || request.Prompt is not null))
        {
            throw new InvalidRequestException("answer_length", $"answer_length is for a text model's prompt (a diffusion LLM with a tokenizer.json); model '{description.Name}' {(request.Prompt is null ? "is not one" : "got token ids, whose masks are the answer")}.");
        }

        var prompt = request.Prompt ?? (request.AnswerLength is { } answer
            ? ((Processes.MaskedProcess)description.Process).TextPrompt(request.TextPrompt ?? request.Condition, "prompt", answer)
            : description.Process.PromptFromCondition(request.TextPrompt ?? request.Condition));
        var sampler = description.Process.CreateSampler(request.Sampler, request.Eta, prompt, request.Condition);
        if (request.Verifiers.Distinct(StringComparer.Ordinal).Count() != request.Verifiers.Count)
        {
            throw new InvalidRequestException("verifiers", $"a verifier is named twice: {CallerInput.QuoteList(request.Verifiers)}.");
        }

        var verifiers = request.Verifiers.Select(_models.GetVerifier).ToList();
        var ensemble = new VerifierEnsemble(request.Verifiers, request.Ensemble, request.VerifierWeights);
        request.Strategy.Validate(request.Steps);
        if (request.Strategy.JudgesStates && description.Process is not Processes.MaskedProcess)
        {
            throw new InvalidRequestException("strategy.judge", $"strategy '{request.Strategy.Name}' judges nodes' states (judge=state), which is for masked models' committed tokens; model '{description.Name}' is a {description.Process.Name} model, whose states are noise: use judge=prediction.");
        }

        if (request.Strategy.NeedsVerifiers && verifiers.Count == 0)
        {
            throw new InvalidRequestException("verifiers", $"strategy '{request.Strategy.Name}' needs at least one verifier to score with.");
        }

        var rows = ClassifierFreeGuidance.NeedsUnconditional(request.Guidance) ? 2 : 1;
        if (rows > _batching.MaxBatchSize)
        {
            throw new InvalidRequestException("guidance", $"a guided step takes two rows but batches hold {_batching.MaxBatchSize}.");
        }

        var batcher = BatcherFor(denoiser);
        var ledger = new TreeLedger(request.Budget, _time, _logger, recordEvents);
        foreach (var (name, verifier) in request.Verifiers.Zip(verifiers))
        {
            ledger.AddVerifier(name, verifier.Kind);
        }

        var condition = request.TextPrompt ?? request.Condition;
        // A pipeline's condition ids are prompt-cache handles: the prompt's, and the negative prompt's for guidance.
        var prompts = leasePrompts ? pipeline?.Prompts.Lease([request.TextPrompt!, request.NegativePrompt ?? string.Empty]) : null;
        long? unconditional = pipeline is null ? null : 0L;
        if (prompts is not null)
        {
            (conditionId, unconditional) = (prompts.Handles[0], prompts.Handles[1]);
            ledger.HoldDecoderCalls(request.Candidates);
        }

        var execution = new ExecutorSettings(batcher, new StepLoop(schedule, sampler, conditionId, request.Guidance, unconditional), description.SampleShape, description.StateElements, condition, ledger)
        {
            // A text model's verifiers get the answer as text too, laid out as this request's prompt laid it out.
            Text = description.Process is Processes.MaskedProcess { Text: not null } text && request.TextPrompt is { } textPrompt
                ? sample => text.Decode(sample, textPrompt, request.AnswerLength)
                : null,
        };
        // With no remote backend for the model when the search starts (and local compute allowed), everything runs here;
        // otherwise placement chooses per group of nodes. A pipeline's workers encode its prompts themselves.
        ITreeExecutor executor = _workers is null || (_workers.Options.UseLocal && !_workers.Hosting(description.Name).Any())
            ? new LocalExecutor(execution)
            : new PlacedExecutor(
                execution,
                new TreePlacement(_locals.GetOrAdd(batcher, b => new LocalBackend(b, _batching.MaxBatchSize)), _workers, description.Name, request.Guidance),
                new TrajectorySettings(description.Name, schedule.Count, sampler.Settings, prompt, request.Guidance, conditionId)
                {
                    TextPrompt = pipeline is null ? null : request.TextPrompt,
                    NegativePrompt = pipeline is null ? null : request.NegativePrompt,
                });
        return new TrajectoryTree(new TreeSettings
        {
            Executor = executor,
            Ledger = ledger,
            Verifiers = [.. verifiers.Select(BatcherFor)],
            Ensemble = ensemble,
            LeaveOutFailedVerifiers = request.LeaveOutFailedVerifiers,
            Sampler = sampler,
            Steps = schedule.Count,
            Shape = description.SampleShape,
            Elements = description.StateElements,
            Condition = condition,
            Seed = request.Seed,
            ForkRenoiseSteps = request.ForkRenoiseSteps,
            PreviewSteps = request.PreviewSteps,
            Previews = new NodePreviews(batcher, execution.Steps, description.Process.CreateSampler(NodePreviews.Deterministic(sampler.Settings), prompt)),
            CalibrateForkStep = ct => Calibration.GetAsync(request, ct),
            Prompts = prompts,
            Decoding = pipeline is null ? null : new TreeDecoding(new PlacedDecoder(pipeline.Decoder, _workers, ledger), [.. verifiers.Select(v => !description.SampleShape.Equals(v.SampleShape))]),
        });
    }

    /// <summary>A prompt is a pipeline's or a text model's: a class-conditioned (or other masked) model refuses one.</summary>
    private static void RequireNoTextPrompt(SearchRequest request, DenoiserDescription description)
    {
        var model = description.Name;
        if (request.TextPrompt is not null && description.Process is Processes.MaskedProcess { Text: not null })
        {
            if (!string.IsNullOrEmpty(request.Condition) || request.Prompt is not null)
            {
                throw new InvalidRequestException("prompt", $"model '{model}' is a text model: give prompt, or condition or tokens, not both.");
            }
        }
        else if (request.TextPrompt is not null)
        {
            throw new InvalidRequestException("prompt", $"model '{model}' takes a condition, not a prompt; prompt is for text-to-image pipelines and text models (a diffusion LLM with a tokenizer.json).");
        }

        if (request.NegativePrompt is not null)
        {
            throw new InvalidRequestException("negative_prompt", $"model '{model}' takes a condition, not a negative prompt; prompt and negative_prompt are for text-to-image pipelines.");
        }
    }

    /// <summary>A pipeline takes a prompt that fits its text encoder (and optionally a negative one), never a condition.</summary>
    private static void ValidatePipelineRequest(SearchRequest request, PipelineStages stages)
    {
        var model = stages.Description.Name;
        if (!string.IsNullOrEmpty(request.Condition))
        {
            throw new InvalidRequestException("condition", $"model '{model}' is a text-to-image pipeline: give prompt (and optionally negative_prompt), not condition {CallerInput.Quote(request.Condition)}.");
        }

        if (request.Prompt is not null)
        {
            throw new InvalidRequestException("prompt", $"model '{model}' is a text-to-image pipeline; it takes a text prompt, not token ids.");
        }

        if (request.TextPrompt is null)
        {
            throw new InvalidRequestException("prompt", $"model '{model}' is a text-to-image pipeline: prompt is required (\"\" for an unconditional image).");
        }

        if (request.Budget.MaxDecoderCalls is { } max && max < request.Candidates)
        {
            throw new InvalidRequestException("budget.max_decoder_calls", $"a pipeline returns {request.Candidates} decoded image(s) (candidates), so budget.max_decoder_calls must be at least {request.Candidates}, got {max}.");
        }

        var encoder = stages.TextEncoder;
        var most = encoder.Description.SequenceLength - 2;
        foreach (var (field, text) in new[] { ("prompt", request.TextPrompt), ("negative_prompt", request.NegativePrompt ?? string.Empty) })
        {
            var tokens = encoder.CountTokens(text);
            if (tokens > most)
            {
                throw new InvalidRequestException(field, $"{field} {CallerInput.Quote(text)} has {tokens} tokens but the text encoder of model '{model}' takes at most {most}; shorten it.");
            }
        }
    }

    /// <summary>A pipeline's stages as this engine runs them: the text encoder's batcher and prompt cache, the denoiser over cached embeddings, the decoder's batcher.</summary>
    private sealed class PipelineRuntime : IAsyncDisposable
    {
        private readonly TextEncoderBatcher _encoder;

        public PipelineRuntime(PipelineStages stages, BatchingOptions batching, TimeProvider time)
        {
            _encoder = new TextEncoderBatcher(stages.TextEncoder, batching, time);
            Prompts = new PromptEmbeddingCache(_encoder, batching.PromptCacheCapacity);
            Denoiser = new EmbeddingDenoiser(stages.Denoisers, Prompts);
            Decoder = new DecoderBatcher(stages.Decoder, batching, time);
        }

        public PromptEmbeddingCache Prompts { get; }

        public IDenoiser Denoiser { get; }

        public DecoderBatcher Decoder { get; }

        public async ValueTask DisposeAsync()
        {
            await _encoder.DisposeAsync().ConfigureAwait(false);
            await Decoder.DisposeAsync().ConfigureAwait(false);
        }
    }
}
