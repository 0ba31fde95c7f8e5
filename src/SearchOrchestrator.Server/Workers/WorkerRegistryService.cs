using System.Security.Cryptography;
using System.Text;
using Grpc.Core;
using Microsoft.Extensions.Logging;
using SearchOrchestrator.Protos.Worker.V1;
using SearchOrchestrator.Workers;

namespace SearchOrchestrator.Server.Workers;

/// <summary>Workers that are not in the configuration register here, with the shared secret.</summary>
internal sealed class WorkerRegistryService(WorkerPool pool, ILogger<WorkerRegistryService> logger) : WorkerRegistry.WorkerRegistryBase
{
    public override async Task<RegisterResponse> Register(RegisterRequest request, ServerCallContext context)
    {
        if (pool.Options.Secret is not { Length: > 0 } secret)
        {
            throw new RpcException(new Status(StatusCode.PermissionDenied, "this orchestrator accepts no registrations: set Workers:Secret here and Worker:Secret on the worker."));
        }

        if (!CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(request.Secret), Encoding.UTF8.GetBytes(secret)))
        {
            WorkerLog.Refused(logger, request.Endpoint, "wrong shared secret");
            throw new RpcException(new Status(StatusCode.PermissionDenied, "wrong shared secret: the worker's Worker:Secret must equal the orchestrator's Workers:Secret."));
        }

        if (!Uri.TryCreate(request.Endpoint, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps))
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, $"endpoint: {CallerInput.Quote(request.Endpoint)} is not an http:// or https:// address the orchestrator can call."));
        }

        if (PlaintextLink.IsRemote(request.Endpoint))
        {
            WorkerLog.Refused(logger, request.Endpoint, "plaintext beyond this machine");
            throw new RpcException(new Status(StatusCode.FailedPrecondition, $"endpoint: {PlaintextLink.Refusal(request.Endpoint, "Workers:Secret")}"));
        }

        try
        {
            var worker = await pool.JoinAsync(request.Endpoint, context.CancellationToken);
            var fit = worker.Link!.Fit;
            WorkerLog.Joined(logger, worker.Kind, worker.Name, fit.Latency.TotalMilliseconds, fit.BytesPerSecond / 1e6, fit.RSquared);
            return new RegisterResponse { Name = worker.Name };
        }
        catch (WorkerRefusedException ex)
        {
            WorkerLog.Refused(logger, request.Endpoint, ex.Message);
            throw new RpcException(new Status(StatusCode.FailedPrecondition, ex.Message));
        }
        catch (WorkerUnavailableException ex)
        {
            throw new RpcException(new Status(StatusCode.Unavailable, $"the orchestrator could not reach the worker back at {CallerInput.Quote(request.Endpoint)}: {ex.Message}"));
        }
    }
}

internal static partial class WorkerLog
{
    [LoggerMessage(EventId = 407, Level = LogLevel.Warning, Message = "This worker listens on {Address}, beyond this machine, without Worker:Secret: anyone who reaches it can run models here; set Worker__Secret (environment) or a secret file (Secrets:Path)")]
    public static partial void NoSecret(ILogger logger, string address);

    [LoggerMessage(EventId = 401, Level = LogLevel.Information, Message = "{Kind} backend {Backend} joined: link α {LatencyMs:0.###} ms, {MegabytesPerSecond:0.#} MB/s, R² {RSquared:0.###}")]
    public static partial void Joined(ILogger logger, string kind, string backend, double latencyMs, double megabytesPerSecond, double rSquared);

    [LoggerMessage(EventId = 402, Level = LogLevel.Warning, Message = "Worker {Worker} refused: {Reason}")]
    public static partial void Refused(ILogger logger, string worker, string reason);

    [LoggerMessage(EventId = 403, Level = LogLevel.Warning, Message = "Cannot reach {Endpoint} yet ({Reason}); retrying in {BackoffSeconds:0.##} s")]
    public static partial void JoinFailed(ILogger logger, string endpoint, string reason, double backoffSeconds);

    [LoggerMessage(EventId = 404, Level = LogLevel.Information, Message = "Registered with orchestrator {Orchestrator} as {Endpoint}")]
    public static partial void Registered(ILogger logger, string orchestrator, string endpoint);

    [LoggerMessage(EventId = 405, Level = LogLevel.Error, Message = "Orchestrator {Orchestrator} refused this worker: {Reason}; stopping (exit code 3)")]
    public static partial void RegistrationRefused(ILogger logger, string orchestrator, string reason);

    [LoggerMessage(EventId = 408, Level = LogLevel.Warning, Message = "Cannot register with {Orchestrator} yet ({Reason}); retrying in {BackoffSeconds:0.##} s")]
    public static partial void RegistrationFailed(ILogger logger, string orchestrator, string reason, double backoffSeconds);
}
