using Google.Protobuf;
using Grpc.Core;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using SearchOrchestrator.Imaging;
using SearchOrchestrator.Onnx.Manifests;
using SearchOrchestrator.Onnx.Repository;
using SearchOrchestrator.Processes;
using SearchOrchestrator.Protos.V1;
using SearchOrchestrator.Search;
using SearchOrchestrator.Server.Internal;
using SearchOrchestrator.Strategies;
using CoreCandidate = SearchOrchestrator.Search.Candidate;
using DecoderPlacements = SearchOrchestrator.Workers.DecoderPlacements;
using StageNames = SearchOrchestrator.Workers.StageNames;
using WireCandidate = SearchOrchestrator.Protos.V1.Candidate;

namespace SearchOrchestrator.Server.Grpc;

/// <summary>
/// The <c>searchorchestrator.v1.Search</c> service: a thin adapter that maps messages to the
/// <see cref="SearchEngine"/> and back; its errors become status codes in <see cref="ErrorStatusInterceptor"/>.
/// </summary>
internal sealed class SearchService(
    SearchEngine engine,
    ModelRepository repository,
    IModelProvider models,
    TimeProvider time,
    IOptions<ServingOptions> serving,
    SearchAdmission admission,
    ServerShutdown shutdown,
    StrategyCatalog strategies,
    SearchOrchestrator.Workers.WorkerPool workers,
    ILogger<SearchService> logger) : Protos.V1.Search.SearchBase
{
    /// <summary>How often a stream carries a progress event.</summary>
    internal static readonly TimeSpan ProgressInterval = TimeSpan.FromMilliseconds(100);

    public override Task<GenerateResponse> Generate(GenerateRequest request, ServerCallContext context) =>
        RunAsync(request, context.CancellationToken, ErrorStatusInterceptor.Of(context));

    /// <summary>
    /// One search, as <see cref="Generate"/> runs it: admission, validation, caps, the result, and errors as
    /// <see cref="RpcException"/>s with the status codes of <see cref="ErrorStatus"/>. The HTTP adapters (OpenAI-compatible
    /// endpoints) call this too, so they cannot differ.
    /// </summary>
    internal async Task<GenerateResponse> GenerateAsync(GenerateRequest request, DateTime deadline, CancellationToken cancellationToken)
    {
        using var cancellation = new CallCancellation(cancellationToken, deadline, shutdown.Token, time);
        try
        {
            return await RunAsync(request, cancellation.Token, cancellation).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not RpcException && ErrorStatus.For(ex, cancellation.Cause) is { } status)
        {
            throw new RpcException(status);
        }
    }

    public override async Task GenerateStream(GenerateRequest request, IServerStreamWriter<GenerateEvent> responseStream, ServerCallContext context)
    {
        var status = StatusCode.Unknown;
        try
        {
            await InWireTerms(async () =>
            {
                await StreamAsync(request, responseStream, context.CancellationToken).ConfigureAwait(false);
                return true;
            }).ConfigureAwait(false);
            status = StatusCode.OK;
        }
        catch (Exception ex)
        {
            status = StatusOf(ex, ErrorStatusInterceptor.Of(context));
            throw;
        }
        finally
        {
            CountRequest(request, status);
        }
    }

    private async Task<GenerateResponse> RunAsync(GenerateRequest request, CancellationToken cancellationToken, CallCancellation? cancellation)
    {
        var status = StatusCode.Unknown;
        try
        {
            var response = await InWireTerms(async () =>
            {
                using var slot = Admit();
                var search = StartSearch(request, recordEvents: false, cancellationToken);
                return ToWire(await Await(search.Completion, request).ConfigureAwait(false), request);
            }).ConfigureAwait(false);
            status = StatusCode.OK;
            return response;
        }
        catch (Exception ex)
        {
            status = StatusOf(ex, cancellation);
            throw;
        }
        finally
        {
            CountRequest(request, status);
        }
    }

    private static StatusCode StatusOf(Exception error, CallCancellation? cancellation) =>
        ErrorStatus.For(error, cancellation?.Cause ?? CancellationCause.None)?.StatusCode ?? StatusCode.Internal;

    private static void CountRequest(GenerateRequest request, StatusCode status) =>
        Diagnostics.SearchMetrics.Requests.Add(
            1,
            new KeyValuePair<string, object?>("strategy", SearchRequestMapper.StrategyName(request)),
            new KeyValuePair<string, object?>("status", status.ToString()));

    private async Task StreamAsync(GenerateRequest request, IServerStreamWriter<GenerateEvent> responseStream, CancellationToken cancelled)
    {
        using var slot = Admit();
        var search = StartSearch(request, recordEvents: true, cancelled);
        // This method is the stream's only writer: progress on a timer while the search runs, then the result. Once the
        // call is cancelled the loop ends at once: the search stops on the same token, and awaiting it (below) frees this
        // thread; looping on until it ends would spin, since a delay on a cancelled token completes immediately.
        while (!search.Completion.IsCompleted && !cancelled.IsCancellationRequested)
        {
            var tick = Task.Delay(ProgressInterval, time, cancelled);
            if (await Task.WhenAny(search.Completion, tick).ConfigureAwait(false) == tick && tick.IsCompletedSuccessfully && !search.Completion.IsCompleted)
            {
                await responseStream.WriteAsync(new GenerateEvent { Progress = ToWire(search) }, cancelled).ConfigureAwait(false);
            }
        }

        var result = await Await(search.Completion, request).ConfigureAwait(false);
        // The events still queued go out before the result.
        for (var last = ToWire(search); last.Events.Count > 0 || last.EventsDropped > 0; last = ToWire(search))
        {
            await responseStream.WriteAsync(new GenerateEvent { Progress = last }, cancelled).ConfigureAwait(false);
        }

        await responseStream.WriteAsync(new GenerateEvent { Result = ToWire(result, request) }, cancelled).ConfigureAwait(false);
    }

    public override Task<ListModelsResponse> ListModels(ListModelsRequest request, ServerCallContext context)
    {
        var response = new ListModelsResponse();
        response.Models.AddRange(repository.Models.Select(m => ToWire(m, repository.ExecutionProvider)));
        response.Models.AddRange(OtherVerifiers());
        if (models is ModelCatalog catalog)
        {
            response.CodeVerifiers.AddRange(catalog.CodeVerifiers.Order(StringComparer.Ordinal));
        }

        return Task.FromResult(response);
    }

    public override Task<ModelInfo> GetModel(GetModelRequest request, ServerCallContext context)
    {
        if (string.IsNullOrWhiteSpace(request.Name))
        {
            throw new InvalidRequestException("name", "the model name is empty; name one of the models ListModels lists.");
        }

        var all = repository.Models.Select(m => ToWire(m, repository.ExecutionProvider)).Concat(OtherVerifiers()).ToList();
        var info = all.FirstOrDefault(m => m.Name == request.Name)
            ?? throw new RpcException(new Status(StatusCode.NotFound, $"no model named {CallerInput.Quote(request.Name)}; available: {string.Join(", ", all.Select(m => m.Name))}."));
        return Task.FromResult(info);
    }

    public override Task<EstimateResponse> Estimate(GenerateRequest request, ServerCallContext context) => InWireTerms(() =>
    {
        var core = SearchRequestMapper.ToCore(request, strategies);
        CheckOutputs(request, core);
        if (core.Steps > serving.Value.MaxSteps)
        {
            throw new InvalidRequestException("steps", $"steps must be at most {serving.Value.MaxSteps} on this server ({ServingOptions.SectionName}:MaxSteps), got {core.Steps}.");
        }

        var estimate = engine.Estimate(core);
        return Task.FromResult(new EstimateResponse
        {
            Strategy = estimate.Strategy,
            Steps = estimate.Steps,
            Nfe = estimate.Nfe,
            NfeMin = estimate.NfeMin,
            NfeIndependent = estimate.NfeIndependent,
            NfeIndependentMin = estimate.NfeIndependentMin,
            Multiplier = estimate.Multiplier,
            MultiplierMin = estimate.MultiplierMin,
            Exact = estimate.Exact,
            BudgetLimited = estimate.BudgetLimited,
            Calibrates = estimate.Calibrates,
            CalibrationNfe = estimate.CalibrationNfe,
            PreviewNfe = estimate.PreviewNfe,
            Basis = estimate.Basis,
            EncoderCalls = estimate.EncoderCalls,
            DecoderCalls = estimate.DecoderCalls,
        });
    });

    /// <summary>Refuses outputs the model cannot make: a PNG of a masked model's tokens.</summary>
    private void CheckOutputs(GenerateRequest request, SearchRequest core)
    {
        if (request.IncludePng && TryGetMasked(core.Model) is not null)
        {
            throw new InvalidRequestException("include_png", $"model '{core.Model}' is a masked model: its candidates are tokens (Candidate.tokens, Candidate.text), not images; leave include_png unset.");
        }
    }

    /// <summary>Takes one of the server's search slots, or refuses the call with ResourceExhausted.</summary>
    private IDisposable Admit() =>
        admission.TryEnter() ?? throw new RpcException(new Status(StatusCode.ResourceExhausted, $"the server is running its limit of {serving.Value.MaxConcurrentSearches} concurrent searches ({ServingOptions.SectionName}:MaxConcurrentSearches); retry later."));

    private SearchRun StartSearch(GenerateRequest request, bool recordEvents, CancellationToken cancellationToken)
    {
        var core = SearchRequestMapper.ToCore(request, strategies);
        CheckOutputs(request, core);
        var caps = serving.Value;
        if (core.Steps > caps.MaxSteps)
        {
            throw new InvalidRequestException("steps", $"steps must be at most {caps.MaxSteps} on this server ({ServingOptions.SectionName}:MaxSteps), got {core.Steps}.");
        }

        admission.CheckNfe(engine.Estimate(core));

        var response = ResponseSize.Planned(request, core.Candidates, core.Steps, Output(core.Model));
        if (response > caps.MaxSendMessageSize)
        {
            throw new RpcException(new Status(StatusCode.ResourceExhausted, $"the response may take {response} bytes ({core.Candidates} candidates{(request.IncludeTensors ? ", with tensors" : string.Empty)}{(request.IncludePng ? ", with PNGs" : string.Empty)}), over the server's limit of {caps.MaxSendMessageSize} bytes ({ServingOptions.SectionName}:MaxSendMessageSize); ask for fewer candidates, or leave out include_png or include_tensors."));
        }

        return engine.Start(core, recordEvents, cancellationToken);
    }

    private async Task<SearchResult> Await(Task<SearchResult> completion, GenerateRequest request)
    {
        var result = await completion.ConfigureAwait(false);
        var cost = result.Cost;
        SearchServiceLog.SearchFinished(logger, result.Strategy, request.Model, request.Condition, result.BudgetLimited ? "budget-limited" : "ok", cost.Nfe, cost.NfeIndependent, cost.VerifierCalls, cost.Batches, cost.MeanBatchSize, cost.WallTime.TotalMilliseconds);
        return result;
    }

    /// <summary>Runs <paramref name="call"/> with Core's argument names in the request's: Core's "sampler" (and "sampler.policy" …) is masked_sampler on the wire.</summary>
    private static async Task<T> InWireTerms<T>(Func<Task<T>> call)
    {
        try
        {
            return await call().ConfigureAwait(false);
        }
        catch (InvalidRequestException ex) when (ex.Argument == "sampler" || ex.Argument.StartsWith("sampler.", StringComparison.Ordinal))
        {
            throw new InvalidRequestException("masked_" + ex.Argument, ex.Message);
        }
    }

    private static SearchOrchestrator.Protos.V1.Progress ToWire(SearchRun search)
    {
        var progress = search.Progress();
        var (events, dropped) = search.TakeEvents(256);
        var wire = new SearchOrchestrator.Protos.V1.Progress
        {
            Nfe = progress.Nfe,
            VerifierCalls = progress.VerifierCalls,
            Nodes = progress.Nodes,
            DeepestStep = progress.DeepestStep,
            ElapsedMs = progress.Elapsed.TotalMilliseconds,
            EncoderCalls = progress.EncoderCalls,
            DecoderCalls = progress.DecoderCalls,
            PreviewNfe = progress.PreviewNfe,
        };
        if (progress.BestScore is { } best)
        {
            wire.BestScore = best;
        }

        wire.EventsDropped = dropped;
        foreach (var e in events)
        {
            var item = new SearchOrchestrator.Protos.V1.TreeEvent { Kind = (SearchOrchestrator.Protos.V1.TreeEvent.Types.Kind)((int)e.Kind + 1), Node = e.Node, Path = e.Path, Step = e.Step, Parent = e.Parent };
            if (e.Score is { } score)
            {
                item.Score = score;
            }

            wire.Events.Add(item);
        }

        return wire;
    }

    private GenerateResponse ToWire(SearchResult result, GenerateRequest request)
    {
        var cost = result.Cost;
        var response = new GenerateResponse
        {
            Strategy = result.Strategy,
            BudgetLimited = result.BudgetLimited,
            Cost = new Protos.V1.CostAccount
            {
                Nfe = cost.Nfe,
                NfeIndependent = cost.NfeIndependent,
                Saving = cost.Saving,
                VerifierCalls = cost.VerifierCalls,
                CalibrationNfe = cost.CalibrationNfe,
                Batches = cost.Batches,
                MeanBatchSize = cost.MeanBatchSize,
                QueueMs = cost.QueueTime.TotalMilliseconds,
                ComputeMs = cost.ComputeTime.TotalMilliseconds,
                WallMs = cost.WallTime.TotalMilliseconds,
                ReplayNfe = cost.ReplayNfe,
                EncoderCalls = cost.EncoderCalls,
                EncoderCacheHits = cost.EncoderCacheHits,
                DecoderCalls = cost.DecoderCalls,
                PreviewNfe = cost.PreviewNfe,
                Verifiers =
                {
                    cost.Verifiers.Select(v => new Protos.V1.VerifierCost
                    {
                        Name = v.Name,
                        Kind = v.Kind,
                        Calls = v.Calls,
                        BytesSent = v.BytesSent,
                        BytesReceived = v.BytesReceived,
                        TransferMs = v.TransferTime.TotalMilliseconds,
                    }),
                },
                Links =
                {
                    cost.Links.Select(l => new LinkTraffic
                    {
                        Link = l.Link,
                        BytesSent = l.BytesSent,
                        BytesReceived = l.BytesReceived,
                        TransferMs = l.TransferTime.TotalMilliseconds,
                        Calls = l.Calls,
                        Stage = l.Stage ?? string.Empty,
                    }),
                },
            },
        };
        if (result.ForkStep is { } fork)
        {
            response.ForkStep = fork;
        }

        response.VerifiersLeftOut.AddRange(result.VerifiersLeftOut.Select(l => new Protos.V1.LeftOutVerifier { Name = l.Name, Reason = l.Reason }));

        var masked = TryGetMasked(request.Model);
        response.Candidates.AddRange(result.Candidates.Select(c => ToWire(c, request, masked)));
        return response;
    }

    /// <summary>The masked process of a model the search just ran on, for token ids and text in the response; null for gaussian models.</summary>
    private MaskedProcess? TryGetMasked(string model) => Output(model).Process as MaskedProcess;

    /// <summary>What a model's candidates are: its denoiser's samples, or a pipeline's decoded images.</summary>
    private Denoising.DenoiserDescription Output(string model) => models.GetStages(model) is { } stages
        ? stages.Description with { SampleShape = stages.Decoder.Description.ImageShape }
        : models.GetDenoiser(model).Description;

    private static WireCandidate ToWire(CoreCandidate candidate, GenerateRequest request, MaskedProcess? masked)
    {
        var wire = new WireCandidate { Path = candidate.Path, Complete = candidate.Complete };
        if (masked is not null)
        {
            wire.Tokens.AddRange(candidate.Sample.Select(v => (int)v));
            wire.Text = masked.Decode(candidate.Sample, masked.Text is null ? null : request.HasPrompt ? request.Prompt : request.Condition, request.HasAnswerLength ? request.AnswerLength : null) ?? string.Empty;
        }

        if (candidate.Score is { } score)
        {
            wire.Score = score;
        }

        wire.Scores.Add(candidate.Scores.ToDictionary(p => p.Key, p => p.Value));
        wire.Shape.AddRange(candidate.Shape.Dimensions);
        if (request.IncludeTensors)
        {
            wire.Tensor = TensorCodec.Encode<float>(candidate.Sample);
        }

        if (request.IncludePng && candidate.Shape.IsImage)
        {
            var (height, width) = (candidate.Shape.Dimensions[1], candidate.Shape.Dimensions[2]);
            var image = ImageGrid.Compose([new GridTile(candidate.Sample, string.Empty)], height, width, (-1f, 1f), scale: 8, channels: candidate.Shape.Dimensions[0]);
            wire.Png = ByteString.CopyFrom(PngEncoder.Encode(image));
        }

        return wire;
    }

    /// <summary>
    /// The verifiers the repository does not hold: C# and kserve ones (the catalog's), then those only the pool's workers
    /// serve, each with its kind, where it runs and its measured link, in name order within each group.
    /// </summary>
    private IEnumerable<ModelInfo> OtherVerifiers()
    {
        var held = repository.Models.Select(m => m.Name).ToHashSet(StringComparer.Ordinal);
        var given = (models as ModelCatalog)?.Verifiers.Where(v => !held.Contains(v.Name)).OrderBy(v => v.Name, StringComparer.Ordinal).ToList() ?? [];
        held.UnionWith(given.Select(v => v.Name));
        var served = workers.Workers.SelectMany(w => w.Description.Models).Where(m => m.Kind == "verifier" && !held.Contains(m.Name)).Select(m => m.Name)
            .Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).Select(workers.RemoteVerifier).OfType<Verifiers.IVerifier>();
        return given.Concat(served).Select(ToWire);
    }

    private static ModelInfo ToWire(Verifiers.IVerifier verifier)
    {
        var info = new ModelInfo { Name = verifier.Name, Kind = ManifestNames.Verifier, Ready = verifier is not OpenInference.KServeVerifier { IsJoined: false }, VerifierKind = verifier.Kind, RunsOn = Verifiers.VerifierKinds.Local };
        if (verifier is Verifiers.IRemoteVerifier remote)
        {
            var links = remote.Links;
            info.RunsOn = string.Join(", ", links.Select(l => l.Name));
            info.Links.AddRange(links.Select(l =>
            {
                var fit = l.Fit;
                return new MeasuredLink
                {
                    Endpoint = l.Name,
                    RoundTripMs = fit.Latency.TotalMilliseconds,
                    MegabytesPerSecond = double.IsFinite(fit.BytesPerSecond) ? fit.BytesPerSecond / 1e6 : 0,
                    Samples = fit.Samples,
                };
            }));
        }

        return info;
    }

    /// <summary>
    /// Where a pipeline's stage runs: this process unless the settings keep it off here (Workers:UseLocal for the
    /// denoiser, Workers:DecoderPlacement for the decoder), and every backend in the pool that serves the stage (a worker
    /// serving the denoiser encodes its prompts itself; the decoder also on kserve servers mapping the pipeline's
    /// vae_decoder; Workers:DecoderPlacement local keeps decoding here).
    /// </summary>
    private IEnumerable<string> StageBackends(string pipeline, string stage)
    {
        var options = workers.Options;
        var (here, served) = stage switch
        {
            "unet" or "text_encoder" => (stage == "text_encoder" || options.UseLocal, StageNames.Denoiser),
            "vae_decoder" => (options.DecoderPlacement != DecoderPlacements.Workers, options.DecoderPlacement == DecoderPlacements.Local ? null : StageNames.Decoder),
            _ => (true, null),
        };
        if (here)
        {
            yield return "local";
        }

        foreach (var backend in served is null ? [] : workers.Backends.OfType<SearchOrchestrator.Workers.IDecoderBackend>().Where(b => b.ServesStage(pipeline, served) && (served == StageNames.Decoder || b is SearchOrchestrator.Workers.WorkerBackend)))
        {
            yield return backend.Name;
        }
    }

    private ModelInfo ToWire(ModelEntry entry, string executionProvider)
    {
        var m = entry.Manifest;
        var info = new ModelInfo
        {
            Name = entry.Name,
            Kind = entry.Kind,
            Ready = entry.IsReady,
            Error = entry.Error ?? string.Empty,
            Process = m?.Process ?? string.Empty,
            Prediction = m?.Prediction ?? string.Empty,
            TrainingSteps = m?.Schedule?.TrainingSteps ?? 0,
            ScoringRule = m?.Scoring?.Rule ?? string.Empty,
            Sha256 = m?.Sha256 ?? string.Empty,
            Description = m?.Description ?? string.Empty,
            ExecutionProvider = entry.IsReady ? executionProvider : string.Empty,
        };
        if (entry.Kind == ManifestNames.Verifier)
        {
            info.VerifierKind = Verifiers.VerifierKinds.Onnx;
            info.RunsOn = Verifiers.VerifierKinds.Local;
        }

        if (m?.Inputs?.GetValueOrDefault("sample")?.Shape is { Length: > 1 } shape)
        {
            info.SampleShape.AddRange(shape[1..]);
        }

        info.Conditions.AddRange(m?.Condition?.Vocabulary?.Keys ?? Enumerable.Empty<string>());
        foreach (var stage in entry.Stages ?? [])
        {
            info.Stages.Add(new ModelStage { Name = stage.Name, Backends = { StageBackends(entry.Name, stage.Name) }, Dtype = stage.Dtype, Inputs = { stage.Inputs.Select(t => t.ToString()) }, Outputs = { stage.Outputs.Select(t => t.ToString()) } });
        }

        if (m?.Tokens is { } tokens)
        {
            // A text model (tokenizer.json) lists no vocabulary: its size comes from the logits' width.
            info.VocabularySize = tokens.Vocabulary?.Length ?? m.Outputs?.GetValueOrDefault("prediction")?.Shape?[^1] ?? 0;
            info.Vocabulary.AddRange(tokens.Vocabulary ?? []);
            if (tokens.MaskId is { } mask)
            {
                info.MaskId = mask;
            }
        }

        return info;
    }
}
