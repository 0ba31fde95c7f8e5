using Microsoft.Extensions.Hosting;
using SearchOrchestrator.Onnx.Repository;

namespace SearchOrchestrator.Server;

/// <summary>
/// Makes the host load and warm every model while it starts: the repository is built when the host creates
/// this service, before it reports started. A broken model is reported by the repository and does not stop the others.
/// </summary>
internal sealed class ModelRepositoryLoader(ModelRepository repository) : IHostedService
{
    /// <summary>The repository the host loaded.</summary>
    public ModelRepository Repository { get; } = repository;

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
