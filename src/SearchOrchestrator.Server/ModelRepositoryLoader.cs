using Microsoft.Extensions.Hosting;
using SearchOrchestrator.Search;
using SearchOrchestrator.Server.OpenInference;
using SearchOrchestrator.Strategies;

namespace SearchOrchestrator.Server;

/// <summary>
/// Makes the host load and warm every model (and load every verifier plug-in) while it starts: the engine, and with
/// it the repository and the catalog, is built when the host creates this service, before it reports started. A
/// broken model is reported by the repository and does not stop the others. The <c>kserve</c> verifiers join then too
/// (one that cannot is logged and tried again by the first search that uses it).
/// </summary>
internal sealed class ModelRepositoryLoader(SearchEngine engine, StrategyCatalog strategies, KServeVerifiers remoteVerifiers) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken) => remoteVerifiers.JoinAllAsync(cancellationToken);

    // Resolving them is the point: the repository, the model catalog and the strategy catalog are built (and a broken
    // registration stops the start) before the host reports started, not by the first request.
    private readonly SearchEngine _engine = engine;
    private readonly StrategyCatalog _strategies = strategies;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
