using SearchOrchestrator.Workers;

namespace SearchOrchestrator.Server.Workers;

/// <summary>The <c>worker</c> kind: a <c>searchorch worker</c> through the worker protocol (<see cref="WorkerPool.ConnectWorkerAsync"/>).</summary>
internal sealed class WorkerBackendFactory(WorkerPool pool) : IBackendFactory
{
    public string Kind => BackendKinds.Worker;

    public async Task<IPooledBackend> ConnectAsync(BackendEndpoint endpoint, CancellationToken cancellationToken = default) =>
        await pool.ConnectWorkerAsync(endpoint.Address, cancellationToken).ConfigureAwait(false);
}
