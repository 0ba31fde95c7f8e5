using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using SearchOrchestrator.Server.OpenInference;
using SearchOrchestrator.Workers;

namespace SearchOrchestrator.Server.Backends;

/// <summary>
/// Joins the workers listed in <c>Workers:Endpoints</c> and the Open Inference Protocol servers listed in
/// <c>Backends:KServe</c> through <see cref="PoolMembership"/> (retrying those not up yet, with the one
/// <see cref="RetryPolicy"/>) and keeps the pool healthy: backends out of rotation come back once their health check passes.
/// </summary>
internal sealed partial class WorkerPoolService(WorkerPool pool, PoolMembership membership, IOptions<KServeOptions> kserve) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var joining = pool.Options.Endpoints.Select(e => new BackendEndpoint(BackendKinds.Worker, e))
            .Concat(kserve.Value.KServe.Select(k => new BackendEndpoint(BackendKinds.KServe, k.Endpoint) { Settings = k }))
            .Select(e => membership.JoinWithRetryAsync(e, stoppingToken))
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
