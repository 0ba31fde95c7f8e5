using System.Diagnostics;
using Google.Protobuf;
using Grpc.Core;
using Microsoft.Extensions.Options;
using SearchOrchestrator.Onnx.Manifests;
using SearchOrchestrator.Onnx.Repository;
using SearchOrchestrator.Onnx.Runtime;
using SearchOrchestrator.Processes;
using SearchOrchestrator.Protos.Worker.V1;
using SearchOrchestrator.Randomness;
using SearchOrchestrator.Search;
using SearchOrchestrator.Server.Internal;
using SearchOrchestrator.Tensors;
using SearchOrchestrator.Workers;
using CoreChildStart = SearchOrchestrator.Processes.ChildStart;
using CoreSettings = SearchOrchestrator.Workers.TrajectorySettings;
using WireChildStart = SearchOrchestrator.Protos.Worker.V1.ChildStart;

namespace SearchOrchestrator.Server.Workers;

/// <summary>
/// The worker protocol's server: a thin adapter over <see cref="WorkerRuntime"/>. Maps messages and reports the time it
/// spent so callers can tell transfer time from work; the shared secret (<see cref="Grpc.ApiKeyInterceptor"/>) and the
/// status codes of errors (<see cref="Grpc.ErrorStatusInterceptor"/>) are the interceptors'.
/// </summary>
internal sealed class WorkerService(WorkerRuntime runtime, ModelRepository repository, IOptions<WorkerHostOptions> options, IOptions<Scheduling.BatchingOptions> batching, IOptions<ModelRepositoryOptions> models) : Worker.WorkerBase
{
    /// <summary>The metadata header that carries the shared secret (<c>x-api-key</c> is accepted too).</summary>
    public const string SecretHeader = "x-worker-secret";

    public override Task<DescribeResponse> Describe(DescribeRequest request, ServerCallContext context)
    {
        var response = new DescribeResponse
        {
            ProtocolVersion = WorkerPool.ProtocolVersion,
            Device = options.Value.Device ?? (repository.ExecutionProvider == "cuda" ? "cuda:0" : "cpu"),
            ExecutionProvider = repository.ExecutionProvider,
            // ONNX Runtime's intra-op threads per session (0 configured means one per core).
            Threads = models.Value.IntraOpThreads > 0 ? models.Value.IntraOpThreads : Environment.ProcessorCount,
            MaxBatchSize = batching.Value.MaxBatchSize,
            MaxResidentBytes = runtime.MaxResidentBytes,
            ResidentBytes = runtime.ResidentBytes,
        };
        response.Models.AddRange(repository.Models.Where(m => m.IsReady).Select(m => new Protos.Worker.V1.HostedModel { Name = m.Name, Kind = m.Kind, Sha256 = m.Manifest?.Sha256 ?? string.Empty }));
        response.Pipelines.AddRange(repository.Models.Where(m => m.IsReady && m.Kind == ManifestNames.Pipeline).Select(m => new PipelineHosting { Model = m.Name, Stages = { options.Value.ServedStages } }));
        return Task.FromResult(response);
    }

    public override async Task<StepResponse> Step(StepRequest request, ServerCallContext context)
    {
        var started = Stopwatch.GetTimestamp();
        var settings = ToCore(request.Settings);
        RequireStage(settings.Model, StageNames.Denoiser);
        var items = request.Items.Select((item, i) =>
        {
            var state = TensorCodec.Decode<float>(item.State.Span) ?? throw new InvalidRequestException($"items[{i}].state", "is not a whole number of float32 values.");
            return new RemoteStep(new RngKey(item.Key), item.StepIndex, state, new float[state.Length]);
        }).ToList();
        var encoding = await runtime.StepAsync(settings, items, context.CancellationToken);
        var response = new StepResponse { EncoderCalls = encoding.Calls, EncoderCacheHits = encoding.Hits };
        response.Results.AddRange(items.Select(i => new StepResult { State = TensorCodec.Encode<float>(i.State), Prediction = TensorCodec.Encode<float>(i.Prediction) }));
        response.ServerMicros = Micros(started);
        return response;
    }

    public override Task<ResidentResponse> Put(PutRequest request, ServerCallContext context)
    {
        var started = Stopwatch.GetTimestamp();
        RequireStage(request.Settings?.Model, StageNames.Denoiser);
        runtime.Put(request.Session, ToCore(request.Settings), [.. request.Items.Select((item, i) => new ResidentState(
            item.Handle,
            new RngKey(item.Key),
            item.StepIndex,
            item.FromPrior ? null : TensorCodec.Decode<float>(item.State.Span) ?? throw new InvalidRequestException($"items[{i}].state", "is not a whole number of float32 values."),
            item.Prediction.IsEmpty ? null : TensorCodec.Decode<float>(item.Prediction.Span) ?? throw new InvalidRequestException($"items[{i}].prediction", "is not a whole number of float32 values."),
            item.FromPrior))]);
        return Task.FromResult(Resident(started));
    }

    public override async Task<ResidentResponse> Advance(AdvanceRequest request, ServerCallContext context)
    {
        var started = Stopwatch.GetTimestamp();
        var passes = await runtime.AdvanceAsync(request.Session, request.Handles, request.ToStep, context.CancellationToken);
        var response = Resident(started);
        response.Passes.AddRange(passes.Passes.Select(p => new Pass { Batch = p.BatchId, Rows = p.Rows, ComputeMicros = (long)p.Compute.TotalMicroseconds }));
        response.QueueMicros = (long)passes.Queued.TotalMicroseconds;
        (response.EncoderCalls, response.EncoderCacheHits) = (passes.Encoding.Calls, passes.Encoding.Hits);
        return response;
    }

    public override Task<ResidentResponse> Fork(ForkRequest request, ServerCallContext context)
    {
        var started = Stopwatch.GetTimestamp();
        runtime.Fork(request.Session, request.Parent, [.. request.Children.Select(ToCore)]);
        return Task.FromResult(Resident(started));
    }

    public override Task<ResidentResponse> Renoise(RenoiseRequest request, ServerCallContext context)
    {
        var started = Stopwatch.GetTimestamp();
        if (request.Child is null || request.Child.Start is not (WireChildStart.Renoise or WireChildStart.ForkRenoise))
        {
            throw new InvalidRequestException("child", "Renoise needs a child with start CHILD_START_RENOISE and its to_step.");
        }

        runtime.Fork(request.Session, request.Parent, [ToCore(request.Child)]);
        return Task.FromResult(Resident(started));
    }

    public override Task<FetchResponse> Fetch(FetchRequest request, ServerCallContext context)
    {
        var started = Stopwatch.GetTimestamp();
        var response = new FetchResponse();
        response.Nodes.AddRange(runtime.Fetch(request.Session, request.Handles).Select(n => new FetchedNode
        {
            Handle = n.Handle,
            StepIndex = n.StepIndex,
            State = TensorCodec.Encode<float>(n.State),
            Prediction = n.Prediction is null ? ByteString.Empty : TensorCodec.Encode<float>(n.Prediction),
        }));
        response.ServerMicros = Micros(started);
        return Task.FromResult(response);
    }

    public override Task<ResidentResponse> Release(ReleaseRequest request, ServerCallContext context)
    {
        var started = Stopwatch.GetTimestamp();
        runtime.Release(request.Session, request.Handles);
        return Task.FromResult(Resident(started));
    }

    public override async Task<VerifyResponse> Verify(VerifyRequest request, ServerCallContext context)
    {
        var started = Stopwatch.GetTimestamp();
        float[] scores;
        if (request.Handles.Count > 0)
        {
            scores = await runtime.VerifyResidentAsync(request.Verifier, request.Condition, request.Session, request.Handles, context.CancellationToken);
        }
        else
        {
            if (request.Shape.Count == 0)
            {
                throw new InvalidRequestException("shape", "samples need their shape (channels, height, width).");
            }

            var shape = new SampleShape([.. request.Shape]);
            var samples = request.Samples.Select((s, i) => TensorCodec.Decode<float>(s.Span) ?? throw new InvalidRequestException($"samples[{i}]", "is not a whole number of float32 values.")).ToList();
            scores = await runtime.VerifyAsync(request.Verifier, request.Condition, shape, samples, request.Texts.Count == 0 ? null : request.Texts, request.Times.Count == 0 ? null : request.Times, context.CancellationToken);
        }

        var response = new VerifyResponse { ServerMicros = Micros(started) };
        response.Scores.AddRange(scores);
        return response;
    }

    public override async Task<DecodeResponse> Decode(DecodeRequest request, ServerCallContext context)
    {
        var started = Stopwatch.GetTimestamp();
        RequireStage(request.Model, StageNames.Decoder);
        if (request.Handles.Count > 0 && request.Latents.Count > 0)
        {
            throw new InvalidRequestException("handles", "give latents or resident handles, not both.");
        }

        var latents = request.Latents.Select((l, i) => TensorCodec.Decode<float>(l.Span) ?? throw new InvalidRequestException($"latents[{i}]", "is not a whole number of float32 values.")).ToList();
        var images = request.Handles.Count > 0
            ? await runtime.DecodeResidentAsync(request.Model, request.Session, request.Handles, context.CancellationToken)
            : await runtime.DecodeAsync(request.Model, latents, context.CancellationToken);
        var response = new DecodeResponse();
        response.Images.AddRange(images.Select(i => TensorCodec.Encode<float>(i)));
        response.Shape.AddRange(repository.GetStages(request.Model)!.Decoder.Description.ImageShape.Dimensions);
        response.ServerMicros = Micros(started);
        return response;
    }

    public override Task<ProbeResponse> Probe(ProbeRequest request, ServerCallContext context)
    {
        if (request.ResponseBytes < 0 || request.ResponseBytes > options.Value.MaxReceiveMessageSize)
        {
            throw new InvalidRequestException("response_bytes", $"must lie in 0..{options.Value.MaxReceiveMessageSize}, got {request.ResponseBytes}.");
        }

        return Task.FromResult(new ProbeResponse { Payload = ByteString.CopyFrom(new byte[request.ResponseBytes]) });
    }

    private static CoreSettings ToCore(Protos.Worker.V1.TrajectorySettings? settings)
    {
        if (settings?.Sampler is not { Name.Length: > 0 } sampler)
        {
            throw new InvalidRequestException("settings", "trajectory settings (model, steps, sampler, guidance, condition_id) are required.");
        }

        var prompt = settings.PromptTokens.Count == 0 && !settings.HasClamped ? null : new TokenPrompt([.. settings.PromptTokens], settings.HasClamped ? [.. settings.Clamped] : null);
        return new CoreSettings(settings.Model, settings.Steps, new SamplerSettings(sampler.Name, sampler.Numbers, sampler.Texts), prompt, settings.Guidance, settings.ConditionId)
        {
            TextPrompt = settings.HasTextPrompt ? settings.TextPrompt : null,
            NegativePrompt = settings.HasNegativePrompt ? settings.NegativePrompt : null,
        };
    }

    /// <summary>A pipeline's stage runs here only when Worker:PipelineStages lists it.</summary>
    private void RequireStage(string? model, string stage)
    {
        if (model is not null && repository.GetStages(model) is not null && !options.Value.ServedStages.Contains(stage))
        {
            throw new InvalidRequestException("model", $"this worker serves only the {string.Join(" and ", options.Value.ServedStages)} stage(s) of pipeline '{model}' ({WorkerHostOptions.SectionName}:PipelineStages), not its {stage}.");
        }
    }

    private static ResidentChild ToCore(ChildSpec child) => new(child.Handle, new RngKey(child.Key), child.Start switch
    {
        WireChildStart.Copy => CoreChildStart.Copy,
        WireChildStart.Prior => CoreChildStart.Prior,
        WireChildStart.Renoise => CoreChildStart.Renoise,
        WireChildStart.ForkRenoise => CoreChildStart.ForkRenoise,
        _ => throw new InvalidRequestException("children.start", $"unknown child start {child.Start}."),
    }, child.ToStep);

    private ResidentResponse Resident(long started) => new() { ServerMicros = Micros(started), ResidentBytes = runtime.ResidentBytes };

    private static long Micros(long started) => (long)Stopwatch.GetElapsedTime(started).TotalMicroseconds;
}
