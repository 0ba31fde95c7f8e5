using Microsoft.Extensions.Logging;
using SearchOrchestrator.Onnx.Manifests;
using SearchOrchestrator.Workers;

namespace SearchOrchestrator.Server.OpenInference;

/// <summary>
/// The <c>kserve</c> kind: an Open Inference Protocol server (<see cref="KServeBackend.ConnectAsync"/>), its
/// <see cref="KServeEndpointOptions"/> in <see cref="BackendEndpoint.Settings"/>.
/// </summary>
internal sealed class KServeBackendFactory(WorkerPool pool, Func<string, ModelManifest?> manifest, Func<string, SearchOrchestrator.Denoising.DecoderDescription?> decoder, TimeProvider? time, ILogger? logger) : IBackendFactory
{
    public string Kind => BackendKinds.KServe;

    public async Task<IPooledBackend> ConnectAsync(BackendEndpoint endpoint, CancellationToken cancellationToken = default)
    {
        var options = endpoint.Settings as KServeEndpointOptions
            ?? throw new WorkerRefusedException(endpoint.Address, $"a kserve backend needs its settings (model mapping) as {nameof(KServeEndpointOptions)}.");
        return await KServeBackend.ConnectAsync(options, manifest, pool.Options, time, logger, localDecoder: decoder, cancellationToken: cancellationToken).ConfigureAwait(false);
    }
}
