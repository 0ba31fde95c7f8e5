using System.Security.Cryptography;
using System.Text;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Microsoft.Extensions.Options;
using SearchOrchestrator.Server.Grpc;

namespace SearchOrchestrator.Server.Workers;

/// <summary>
/// Guards the Open Inference Protocol on a <c>searchorch worker</c> with the worker's shared secret
/// (<c>Worker:Secret</c>): a call must carry it in <c>x-api-key</c> (what KServe clients and the orchestrator's
/// <c>kserve</c> backend send, <c>Backends:KServe:n:ApiKey</c>) or in <c>x-worker-secret</c>. Without a secret every
/// call is served, as for the worker protocol.
/// </summary>
internal sealed class WorkerSecretInterceptor(IOptions<WorkerHostOptions> options) : Interceptor
{
    private readonly byte[]? _secret = options.Value.Secret is { Length: > 0 } s ? Encoding.UTF8.GetBytes(s) : null;

    public override Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
    {
        if (_secret is not null && !OpenInference.OpenInferenceService.OpenMethods.Contains(context.Method))
        {
            var sent = context.RequestHeaders.GetValue(ApiKeyInterceptor.Header) ?? context.RequestHeaders.GetValue(WorkerService.SecretHeader) ?? string.Empty;
            if (!CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(sent), _secret))
            {
                throw new RpcException(new Status(StatusCode.Unauthenticated, $"this worker needs its shared secret (Worker:Secret) in the '{ApiKeyInterceptor.Header}' header; on an orchestrator set Backends:KServe:<n>:ApiKey to it."));
            }
        }

        return continuation(request, context);
    }
}
