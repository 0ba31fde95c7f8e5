using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using SearchOrchestrator.Search;

namespace SearchOrchestrator.Server.Workers;

/// <summary>
/// On a worker: forgets the resident nodes of sessions idle for <c>Worker:SessionIdleTimeout</c>, checking a quarter
/// of that often (at most once a minute), so nodes a killed orchestrator never released do not stay until a restart.
/// </summary>
internal sealed partial class ResidentSessionExpiry(WorkerRuntime runtime, IOptions<WorkerHostOptions> options, TimeProvider time, ILogger<ResidentSessionExpiry> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var idle = options.Value.SessionIdleTimeout;
        using var timer = new PeriodicTimer(TimeSpan.FromTicks(Math.Min(idle.Ticks / 4, TimeSpan.FromMinutes(1).Ticks)), time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                if (runtime.ExpireIdle(idle) is > 0 and var expired)
                {
                    Expired(logger, expired, idle.TotalMinutes);
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    [LoggerMessage(EventId = 409, Level = LogLevel.Information, Message = "Released {Nodes} resident nodes of sessions idle for {IdleMinutes:0.#} min (Worker:SessionIdleTimeout)")]
    private static partial void Expired(ILogger logger, int nodes, double idleMinutes);
}
