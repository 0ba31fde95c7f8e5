using Microsoft.Extensions.Hosting;
using SearchOrchestrator.Search;

namespace SearchOrchestrator.Server;

/// <summary>
/// Makes the host load and warm every model (and load every verifier plug-in) while it starts: the engine, and with
/// it the repository and the catalog, is built when the host creates this service, before it reports started. A
/// broken model is reported by the repository and does not stop the others.
/// </summary>
internal sealed class ModelRepositoryLoader(SearchEngine engine) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    private readonly SearchEngine _engine = engine; // resolving it is the point: it builds the repository and catalog

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
