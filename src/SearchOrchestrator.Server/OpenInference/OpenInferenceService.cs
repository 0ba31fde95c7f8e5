using System.Reflection;
using Grpc.Core;
using Microsoft.Extensions.Logging;
using SearchOrchestrator.Onnx.Manifests;
using SearchOrchestrator.Onnx.Repository;
using SearchOrchestrator.Protos.Inference;
using SearchOrchestrator.Search;
using SearchOrchestrator.Server.Internal;

namespace SearchOrchestrator.Server.OpenInference;

/// <summary>
/// The Open Inference Protocol (KServe v2) over gRPC for every model the repository serves: denoisers (inputs
/// sample, time, condition; output prediction, named as in the manifest), ONNX verifiers (input sample; output
/// the raw rows before the scoring rule) and pipelines' VAE decoders (<c>&lt;pipeline&gt;/vae_decoder</c>:
/// <c>latent_sample</c> → <c>sample</c>, as diffusers exports them). A thin adapter: it checks and decodes the tensors, runs the model's
/// backend, and encodes the output as <c>raw_output_contents</c>; errors become status codes in
/// <see cref="Grpc.ErrorStatusInterceptor"/>.
/// </summary>
internal sealed class OpenInferenceService(ModelRepository repository, IModelProvider models, ILogger<OpenInferenceService> logger, TimeProvider? time = null)
    : GRPCInferenceService.GRPCInferenceServiceBase
{
    /// <summary>The name <c>ServerMetadata</c> reports.</summary>
    public const string ServerName = "searchorchestrator";

    /// <summary>The Triton extensions this service implements, as <c>ServerMetadata</c> lists them.</summary>
    public static readonly IReadOnlyList<string> Extensions = ["model_configuration", "statistics", "model_repository"];

    /// <summary>
    /// The calls any client may make without a key or secret, as for <c>grpc.health.v1.Health</c>: liveness and
    /// readiness probes of an orchestrator, a load balancer or Kubernetes.
    /// </summary>
    public static readonly IReadOnlySet<string> OpenMethods = new HashSet<string>(StringComparer.Ordinal)
    {
        "/inference.GRPCInferenceService/ServerLive",
        "/inference.GRPCInferenceService/ServerReady",
    };

    private readonly TimeProvider _time = time ?? TimeProvider.System;

    private IReadOnlyDictionary<string, ServedModel> Served => field ??= ServedModel.From(repository, models);

    public override Task<ServerLiveResponse> ServerLive(ServerLiveRequest request, ServerCallContext context) =>
        Task.FromResult(new ServerLiveResponse { Live = true });

    public override Task<ServerReadyResponse> ServerReady(ServerReadyRequest request, ServerCallContext context) =>
        Task.FromResult(new ServerReadyResponse { Ready = Served.Count > 0 });

    /// <summary>Ready for every served model; an unknown model or version is NOT_FOUND, as Triton answers.</summary>
    public override Task<ModelReadyResponse> ModelReady(ModelReadyRequest request, ServerCallContext context)
    {
        Find(request.Name, request.Version);
        return Task.FromResult(new ModelReadyResponse { Ready = true });
    }

    public override Task<ServerMetadataResponse> ServerMetadata(ServerMetadataRequest request, ServerCallContext context) =>
        Task.FromResult(new ServerMetadataResponse
        {
            Name = ServerName,
            Version = typeof(OpenInferenceService).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "0",
            Extensions = { Extensions },
        });

    public override Task<ModelMetadataResponse> ModelMetadata(ModelMetadataRequest request, ServerCallContext context)
    {
        var model = Find(request.Name, request.Version);
        var response = new ModelMetadataResponse { Name = model.Name, Versions = { ServedModel.Version }, Platform = ServedModel.Platform };
        response.Inputs.AddRange(model.Inputs.Select(Metadata));
        response.Outputs.Add(Metadata(model.Output));
        return Task.FromResult(response);
    }

    public override Task<ModelConfigResponse> ModelConfig(ModelConfigRequest request, ServerCallContext context) =>
        Task.FromResult(new ModelConfigResponse { Config = Find(request.Name, request.Version).Config() });

    /// <summary>Statistics of one model, or of every served model when the name is empty.</summary>
    public override Task<ModelStatisticsResponse> ModelStatistics(ModelStatisticsRequest request, ServerCallContext context)
    {
        var asked = request.Name.Length == 0
            ? (IsServedVersion(request.Version) ? Served.Values.OrderBy(m => m.Name, StringComparer.Ordinal).ToList() : [])
            : [Find(request.Name, request.Version)];
        var response = new ModelStatisticsResponse();
        response.ModelStats.AddRange(asked.Select(m => m.Statistics.ToProto(m.Name, ServedModel.Version)));
        return Task.FromResult(response);
    }

    /// <summary>Every repository model: the served ones READY, the others UNAVAILABLE with the reason.</summary>
    public override Task<RepositoryIndexResponse> RepositoryIndex(RepositoryIndexRequest request, ServerCallContext context)
    {
        var response = new RepositoryIndexResponse();
        var stages = Served.Values.Where(m => m.Kind == KServeStages.VaeDecoder).Select(m => (m.Name, Entry: (ModelEntry?)null));
        foreach (var (name, entry) in repository.Models.Select(e => (e.Name, Entry: (ModelEntry?)e)).Concat(stages).OrderBy(e => e.Name, StringComparer.Ordinal))
        {
            var index = Served.ContainsKey(name)
                ? new RepositoryIndexResponse.Types.ModelIndex { Name = name, Version = ServedModel.Version, State = "READY" }
                : new RepositoryIndexResponse.Types.ModelIndex
                {
                    Name = name,
                    State = "UNAVAILABLE",
                    Reason = entry!.IsReady
                        ? entry.Kind == ManifestNames.Pipeline
                            ? $"a text-to-image pipeline: its VAE decoder is served as {CallerInput.Quote(KServeStages.ModelName(name, KServeStages.VaeDecoder))}"
                            : "loaded, but not served over this protocol (only denoisers, ONNX verifiers of samples alone and pipelines' VAE decoders are)"
                        : entry.Error ?? "not loaded",
                };
            if (!request.Ready || index.State == "READY")
            {
                response.Models.Add(index);
            }
        }

        return Task.FromResult(response);
    }

    public override async Task<ModelInferResponse> ModelInfer(ModelInferRequest request, ServerCallContext context)
    {
        var model = Find(request.ModelName, request.ModelVersion);
        var started = _time.GetTimestamp();
        try
        {
            var (batch, inputs) = ReadOrLog(model, request);
            var decoded = _time.GetTimestamp();
            var output = await model.RunAsync(batch, inputs, context.CancellationToken).ConfigureAwait(false);

            var ran = _time.GetTimestamp();
            var shape = model.Output.Shape.ToArray();
            shape[0] = batch;
            var response = new ModelInferResponse { ModelName = model.Name, ModelVersion = ServedModel.Version, Id = request.Id };
            response.Outputs.Add(new ModelInferResponse.Types.InferOutputTensor { Name = model.Output.Name, Datatype = model.Output.Datatype, Shape = { shape } });
            response.RawOutputContents.Add(TensorCodec.Encode<float>(output));
            model.Statistics.RecordSuccess(batch, _time.GetElapsedTime(started, decoded), _time.GetElapsedTime(decoded, ran), _time.GetElapsedTime(ran), _time.GetUtcNow());
            return response;
        }
        catch
        {
            model.Statistics.RecordFailure(_time.GetElapsedTime(started), _time.GetUtcNow());
            throw;
        }
    }

    private (int Batch, InputValues[] Inputs) ReadOrLog(ServedModel model, ModelInferRequest request)
    {
        try
        {
            return InferRequestReader.Read(model, request);
        }
        catch (RpcException ex)
        {
            OpenInferenceLog.InferRefused(logger, model.Name, ex.Status.Detail);
            throw;
        }
    }

    private ServedModel Find(string name, string version)
    {
        if (string.IsNullOrEmpty(name))
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, "the model name is empty; name one of the served models."));
        }

        if (!Served.TryGetValue(name, out var model))
        {
            throw new RpcException(new Status(StatusCode.NotFound, $"no model named {CallerInput.Quote(name)} is served; served: {string.Join(", ", Served.Keys.Order(StringComparer.Ordinal))}."));
        }

        return IsServedVersion(version)
            ? model
            : throw new RpcException(new Status(StatusCode.NotFound, $"model {CallerInput.Quote(name)} has no version {CallerInput.Quote(version)}; it is served as version {ServedModel.Version} (or leave the version empty)."));
    }

    private static bool IsServedVersion(string version) => version.Length == 0 || version == ServedModel.Version;

    private static ModelMetadataResponse.Types.TensorMetadata Metadata(ServedTensor tensor) =>
        new() { Name = tensor.Name, Datatype = tensor.Datatype, Shape = { tensor.Shape } };
}

/// <summary>Log messages of the Open Inference Protocol service and backend.</summary>
internal static partial class OpenInferenceLog
{
    [LoggerMessage(EventId = 4001, Level = LogLevel.Debug, Message = "ModelInfer for {Model} refused: {Detail}")]
    public static partial void InferRefused(ILogger logger, string model, string detail);

    [LoggerMessage(EventId = 4002, Level = LogLevel.Information, Message = "KServe backend {Endpoint}: model {Model} served as {RemoteModel} version '{Version}'; metadata matches the manifest")]
    public static partial void BackendConnected(ILogger logger, string endpoint, string model, string remoteModel, string version);

    [LoggerMessage(EventId = 4003, Level = LogLevel.Information, Message = "Verifier {Verifier} (kserve) joined: {Endpoint} serves it as {RemoteModel} version '{Version}'; metadata matches; link round trip {RoundTripMs:F3} ms, {MegabytesPerSecond:F1} MB/s")]
    public static partial void VerifierJoined(ILogger logger, string verifier, string endpoint, string remoteModel, string version, double roundTripMs, double megabytesPerSecond);

    [LoggerMessage(EventId = 4004, Level = LogLevel.Warning, Message = "Verifier {Verifier} (kserve) did not join at start; searches that use it try again: {Reason}")]
    public static partial void VerifierNotJoined(ILogger logger, string verifier, string reason);
}
