using System.Reflection;
using Grpc.Core;
using Microsoft.Extensions.Logging;
using SearchOrchestrator.Onnx.Repository;
using SearchOrchestrator.Protos.Inference;

namespace SearchOrchestrator.Server.OpenInference;

/// <summary>
/// The Open Inference Protocol (KServe v2) over gRPC for every model the repository serves: denoisers (inputs
/// sample, time, condition; output prediction, named as in the manifest) and ONNX verifiers (input sample; output
/// the raw rows before the scoring rule). A thin adapter: it checks and decodes the tensors, runs the model's
/// backend, and encodes the output as <c>raw_output_contents</c>.
/// </summary>
internal sealed class OpenInferenceService(ModelRepository repository, IModelProvider models, ILogger<OpenInferenceService> logger)
    : GRPCInferenceService.GRPCInferenceServiceBase
{
    /// <summary>The name <c>ServerMetadata</c> reports.</summary>
    public const string ServerName = "searchorchestrator";

    private IReadOnlyDictionary<string, ServedModel> Served => field ??= ServedModel.From(repository, models);

    public override Task<ServerLiveResponse> ServerLive(ServerLiveRequest request, ServerCallContext context) =>
        Task.FromResult(new ServerLiveResponse { Live = true });

    public override Task<ServerReadyResponse> ServerReady(ServerReadyRequest request, ServerCallContext context) =>
        Task.FromResult(new ServerReadyResponse { Ready = Served.Count > 0 });

    public override Task<ModelReadyResponse> ModelReady(ModelReadyRequest request, ServerCallContext context) =>
        Task.FromResult(new ModelReadyResponse { Ready = Served.ContainsKey(request.Name) && IsServedVersion(request.Version) });

    public override Task<ServerMetadataResponse> ServerMetadata(ServerMetadataRequest request, ServerCallContext context) =>
        Task.FromResult(new ServerMetadataResponse
        {
            Name = ServerName,
            Version = typeof(OpenInferenceService).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "0",
        });

    public override Task<ModelMetadataResponse> ModelMetadata(ModelMetadataRequest request, ServerCallContext context)
    {
        var model = Find(request.Name, request.Version);
        var response = new ModelMetadataResponse { Name = model.Name, Versions = { ServedModel.Version }, Platform = ServedModel.Platform };
        response.Inputs.AddRange(model.Inputs.Select(Metadata));
        response.Outputs.Add(Metadata(model.Output));
        return Task.FromResult(response);
    }

    public override async Task<ModelInferResponse> ModelInfer(ModelInferRequest request, ServerCallContext context)
    {
        var model = Find(request.ModelName, request.ModelVersion);
        var (batch, inputs) = ReadOrLog(model, request);
        float[] output;
        try
        {
            output = await model.RunAsync(batch, inputs, context.CancellationToken).ConfigureAwait(false);
        }
        catch (InvalidRequestException ex)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, $"{ex.Argument}: {ex.Message}"));
        }

        var shape = model.Output.Shape.ToArray();
        shape[0] = batch;
        var response = new ModelInferResponse { ModelName = model.Name, ModelVersion = ServedModel.Version, Id = request.Id };
        response.Outputs.Add(new ModelInferResponse.Types.InferOutputTensor { Name = model.Output.Name, Datatype = model.Output.Datatype, Shape = { shape } });
        response.RawOutputContents.Add(RawTensors.FromFloats(output));
        return response;
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
}
