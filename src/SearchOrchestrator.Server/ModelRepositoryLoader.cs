using Microsoft.Extensions.Hosting;
using SearchOrchestrator.Search;
using SearchOrchestrator.Server.OpenInference;

namespace SearchOrchestrator.Server;

/// <summary>
/// Makes the host load and warm every model (and load every verifier plug-in) while it starts: the engine, and with
/// it the repository and the catalog, is built when the host creates this service, before it reports started. A
/// broken model is reported by the repository and does not stop the others. The <c>kserve</c> verifiers join then too
/// (one that cannot is logged and tried again by the first search that uses it).
/// </summary>
internal sealed class ModelRepositoryLoader(SearchEngine engine, KServeVerifiers remoteVerifiers) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken) => remoteVerifiers.JoinAllAsync(cancellationToken);

    private readonly SearchEngine _engine = engine; // resolving it is the point: it builds the repository and catalog

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
