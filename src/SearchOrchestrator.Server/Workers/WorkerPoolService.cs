using System.Security.Cryptography;
using System.Text;
using Grpc.Core;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using SearchOrchestrator.Protos.Worker.V1;
using SearchOrchestrator.Server.OpenInference;
using SearchOrchestrator.Workers;

namespace SearchOrchestrator.Server.Workers;

/// <summary>
/// Joins the workers listed in <c>Workers:Endpoints</c> and the Open Inference Protocol servers listed in
/// <c>Backends:KServe</c> (retrying those not up yet, with backoff) and keeps the pool healthy: backends out of rotation
/// come back once their health check passes.
/// </summary>
internal sealed partial class WorkerPoolService(WorkerPool pool, PoolMembership membership, IOptions<KServeOptions> kserve) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var joining = pool.Options.Endpoints.Select(e => membership.JoinWithRetryAsync(e, ct => membership.JoinWorkerAsync(e, ct), stoppingToken))
            .Concat(kserve.Value.KServe.Select(k => membership.JoinWithRetryAsync(k.Endpoint, ct => membership.JoinKServeAsync(k, ct), stoppingToken)))
            .ToList();
        try
        {
            await Task.WhenAll([.. joining, pool.MaintainAsync(stoppingToken)]);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }
}

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

        try
        {
            var worker = await pool.JoinAsync(request.Endpoint, context.CancellationToken);
            var fit = worker.Link!.Fit;
            WorkerLog.Joined(logger, worker.Name, worker.Description.Device, fit.Latency.TotalMilliseconds, fit.BytesPerSecond / 1e6, fit.RSquared);
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

/// <summary>On a worker with <c>Worker:Join</c>: registers with that orchestrator once the worker is listening.</summary>
internal sealed class WorkerRegistration(IOptions<WorkerHostOptions> options, Microsoft.AspNetCore.Hosting.Server.IServer server, IHostApplicationLifetime lifetime, ILogger<WorkerRegistration> logger, TimeProvider time) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (options.Value.Join is not { Length: > 0 } join)
        {
            return;
        }

        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using (lifetime.ApplicationStarted.Register(() => started.TrySetResult()))
        {
            await started.Task.WaitAsync(stoppingToken);
        }

        var advertise = options.Value.Advertise
            ?? server.Features.Get<Microsoft.AspNetCore.Hosting.Server.Features.IServerAddressesFeature>()?.Addresses.FirstOrDefault()
            ?? throw new InvalidOperationException("The worker does not know its own address; set Worker:Advertise.");
        using var channel = global::Grpc.Net.Client.GrpcChannel.ForAddress(join);
        var client = new WorkerRegistry.WorkerRegistryClient(channel);
        var backoff = TimeSpan.FromMilliseconds(500);
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await client.RegisterAsync(new RegisterRequest { Endpoint = advertise, Secret = options.Value.Secret ?? string.Empty }, cancellationToken: stoppingToken);
                WorkerLog.Registered(logger, join, advertise);
                return;
            }
            catch (RpcException ex) when (ex.StatusCode is StatusCode.PermissionDenied or StatusCode.FailedPrecondition or StatusCode.InvalidArgument)
            {
                WorkerLog.RegistrationRefused(logger, join, ex.Status.Detail);
                return;
            }
            catch (RpcException ex) when (!stoppingToken.IsCancellationRequested)
            {
                WorkerLog.JoinFailed(logger, join, ex.Status.Detail, backoff.TotalSeconds);
                await Task.Delay(backoff, time, stoppingToken);
                backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, TimeSpan.FromSeconds(30).Ticks));
            }
        }
    }
}

internal static partial class WorkerLog
{
    [LoggerMessage(EventId = 401, Level = LogLevel.Information, Message = "Worker {Worker} joined on {Device}: link α {LatencyMs:0.###} ms, {MegabytesPerSecond:0.#} MB/s, R² {RSquared:0.###}")]
    public static partial void Joined(ILogger logger, string worker, string device, double latencyMs, double megabytesPerSecond, double rSquared);

    [LoggerMessage(EventId = 402, Level = LogLevel.Warning, Message = "Worker {Worker} refused: {Reason}")]
    public static partial void Refused(ILogger logger, string worker, string reason);

    [LoggerMessage(EventId = 403, Level = LogLevel.Warning, Message = "Cannot reach {Endpoint} yet ({Reason}); retrying in {BackoffSeconds:0.##} s")]
    public static partial void JoinFailed(ILogger logger, string endpoint, string reason, double backoffSeconds);

    [LoggerMessage(EventId = 404, Level = LogLevel.Information, Message = "Registered with orchestrator {Orchestrator} as {Endpoint}")]
    public static partial void Registered(ILogger logger, string orchestrator, string endpoint);

    [LoggerMessage(EventId = 406, Level = LogLevel.Information, Message = "KServe backend {Endpoint} joined for {Models}: link α {LatencyMs:0.###} ms, {MegabytesPerSecond:0.#} MB/s, R² {RSquared:0.###}")]
    public static partial void KServeJoined(ILogger logger, string endpoint, string models, double latencyMs, double megabytesPerSecond, double rSquared);

    [LoggerMessage(EventId = 405, Level = LogLevel.Error, Message = "Orchestrator {Orchestrator} refused this worker: {Reason}")]
    public static partial void RegistrationRefused(ILogger logger, string orchestrator, string reason);
}
