using Microsoft.AspNetCore.Routing;
using SearchOrchestrator.Server.OpenInference;

namespace Microsoft.AspNetCore.Builder;

/// <summary>Maps the Open Inference Protocol (KServe v2) service.</summary>
public static class OpenInferenceEndpointRouteBuilderExtensions
{
    /// <summary>
    /// Serves <c>inference.GRPCInferenceService</c> (ServerLive, ServerReady, ModelReady, ServerMetadata,
    /// ModelMetadata, ModelInfer) for every denoiser and ONNX verifier in the host's model repository. Needs
    /// <c>AddGrpc()</c> and <c>AddSearchOrchestrator()</c> (or a registered <c>ModelRepository</c> and
    /// <c>IModelProvider</c>).
    /// </summary>
    public static GrpcServiceEndpointConventionBuilder MapOpenInferenceProtocol(this IEndpointRouteBuilder endpoints)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        return endpoints.MapGrpcService<OpenInferenceService>();
    }
}
