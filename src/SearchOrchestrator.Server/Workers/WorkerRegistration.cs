using Grpc.Core;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using SearchOrchestrator.Protos.Worker.V1;
using SearchOrchestrator.Workers;

namespace SearchOrchestrator.Server.Workers;

/// <summary>
/// On a worker with <c>Worker:Join</c>: registers with that orchestrator once the worker listens, retrying with
/// jittered exponential backoff until it is accepted, and registers again every <c>Worker:RegistrationInterval</c>
/// (an orchestrator that restarted has forgotten it; one that knows it answers at once). A refusal (wrong secret,
/// plaintext address, different model) is final: the reason is logged and the worker stops with exit code 3, so a
/// supervisor (<c>Restart=on-failure</c>, a Kubernetes restart) sees it. Also warns when the worker listens beyond
/// loopback without a secret.
/// </summary>
internal sealed class WorkerRegistration(IOptions<WorkerHostOptions> options, Microsoft.AspNetCore.Hosting.Server.IServer server, IHostApplicationLifetime lifetime, ILogger<WorkerRegistration> logger, TimeProvider time) : BackgroundService
{
    /// <summary>The process exit code of a worker its orchestrator refused.</summary>
    public const int RefusedExitCode = 3;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using (lifetime.ApplicationStarted.Register(() => started.TrySetResult()))
        {
            await started.Task.WaitAsync(stoppingToken);
        }

        var worker = options.Value;
        var addresses = server.Features.Get<Microsoft.AspNetCore.Hosting.Server.Features.IServerAddressesFeature>()?.Addresses ?? [];
        if (string.IsNullOrEmpty(worker.Secret) && addresses.FirstOrDefault(a => !IsLoopback(a)) is { } open)
        {
            WorkerLog.NoSecret(logger, open);
        }

        if (worker.Join is not { Length: > 0 } join)
        {
            return;
        }

        var advertise = worker.Advertise
            ?? addresses.FirstOrDefault()
            ?? throw new InvalidOperationException("The worker does not know its own address; set Worker:Advertise.");
        using var channel = global::Grpc.Net.Client.GrpcChannel.ForAddress(join, new global::Grpc.Net.Client.GrpcChannelOptions { HttpHandler = TlsTrust.CreateHandler(worker.Tls) });
        var client = new WorkerRegistry.WorkerRegistryClient(channel);
        var untilAccepted = RetryPolicy.Create(
            int.MaxValue,
            TimeSpan.FromMilliseconds(500),
            ex => ex is RpcException rpc && !IsRefusal(rpc),
            time,
            (ex, delay) => WorkerLog.RegistrationFailed(logger, join, (ex as RpcException)?.Status.Detail ?? ex.Message, delay.TotalSeconds));

        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                await untilAccepted.ExecuteAsync(
                    async ct => await client.RegisterAsync(new RegisterRequest { Endpoint = advertise, Secret = worker.Secret ?? string.Empty }, cancellationToken: ct),
                    stoppingToken);
                WorkerLog.Registered(logger, join, advertise);
                await Task.Delay(worker.RegistrationInterval, time, stoppingToken);
            }
        }
        catch (RpcException ex) when (IsRefusal(ex))
        {
            WorkerLog.RegistrationRefused(logger, join, ex.Status.Detail);
            Environment.ExitCode = RefusedExitCode;
            lifetime.StopApplication();
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    private static bool IsRefusal(RpcException ex) => ex.StatusCode is StatusCode.PermissionDenied or StatusCode.FailedPrecondition or StatusCode.InvalidArgument;

    private static bool IsLoopback(string address) =>
        Uri.TryCreate(address.Replace("://*", "://0.0.0.0", StringComparison.Ordinal).Replace("://+", "://0.0.0.0", StringComparison.Ordinal), UriKind.Absolute, out var uri) && uri.IsLoopback;
}
