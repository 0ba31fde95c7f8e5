using Microsoft.Extensions.Logging;
using SearchOrchestrator.Onnx.Repository;
using SearchOrchestrator.Server.OpenInference;
using SearchOrchestrator.Workers;

namespace SearchOrchestrator.Server.Workers;

/// <summary>
/// Joins backends of either kind to the <see cref="WorkerPool"/>: a <c>worker</c> through the worker protocol, a
/// <c>kserve</c> server through <see cref="KServeBackend.ConnectAsync"/> (its metadata checked against this
/// orchestrator's manifests). Shared by the configured endpoints and DNS discovery.
/// </summary>
public sealed class PoolMembership
{
    private readonly WorkerPool _pool;
    private readonly Func<string, ModelManifest?> _manifest;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;

    /// <summary>Creates the membership of <paramref name="pool"/>; <paramref name="repository"/> gives our manifests.</summary>
    public PoolMembership(WorkerPool pool, ModelRepository repository, TimeProvider? time = null, ILogger<PoolMembership>? logger = null)
        : this(pool, name => repository.Models.FirstOrDefault(m => m.Name == name && m.IsReady)?.Manifest, time, logger)
    {
        ArgumentNullException.ThrowIfNull(repository);
    }

    /// <summary>Creates the membership of <paramref name="pool"/>; <paramref name="manifest"/> gives our manifest of a model (null: not here).</summary>
    public PoolMembership(WorkerPool pool, Func<string, ModelManifest?> manifest, TimeProvider? time = null, ILogger<PoolMembership>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(pool);
        ArgumentNullException.ThrowIfNull(manifest);
        _pool = pool;
        _manifest = manifest;
        _time = time ?? TimeProvider.System;
        _logger = logger ?? (ILogger)Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance;
    }

    /// <summary>The pool backends join.</summary>
    public WorkerPool Pool => _pool;

    /// <summary>Joins the worker at <paramref name="endpoint"/> once.</summary>
    /// <exception cref="WorkerRefusedException">Refused (protocol, model hash).</exception>
    /// <exception cref="WorkerUnavailableException">Not reachable.</exception>
    public async Task<IStepBackend> JoinWorkerAsync(string endpoint, CancellationToken cancellationToken = default)
    {
        var worker = await _pool.JoinAsync(endpoint, cancellationToken).ConfigureAwait(false);
        var fit = worker.Link!.Fit;
        WorkerLog.Joined(_logger, endpoint, worker.Description.Device, fit.Latency.TotalMilliseconds, fit.BytesPerSecond / 1e6, fit.RSquared);
        return worker;
    }

    /// <summary>Connects the Open Inference Protocol server <paramref name="options"/> names and adds it to the pool, once.</summary>
    /// <exception cref="WorkerRefusedException">Refused (a mapped model is not ours, or its metadata differs from our manifest).</exception>
    /// <exception cref="WorkerUnavailableException">Not reachable or not ready.</exception>
    public async Task<IStepBackend> JoinKServeAsync(KServeEndpointOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (_pool.StatelessBackends.FirstOrDefault(b => b.Name == options.Endpoint) is { } existing)
        {
            return existing;
        }

        var backend = await KServeBackend.ConnectAsync(options, _manifest, _pool.Options, _time, _logger, cancellationToken: cancellationToken).ConfigureAwait(false);
        if (!_pool.Add(backend))
        {
            await backend.DisposeAsync().ConfigureAwait(false);
            throw new WorkerRefusedException(options.Endpoint, "a worker or backend of the same address is already in the pool.");
        }

        var fit = backend.Link.Fit;
        WorkerLog.KServeJoined(_logger, options.Endpoint, string.Join(", ", options.Models.Keys), fit.Latency.TotalMilliseconds, fit.BytesPerSecond / 1e6, fit.RSquared);
        return backend;
    }

    /// <summary>
    /// Joins with retries until it succeeds, is refused, or <paramref name="cancellationToken"/> fires: backoff from
    /// 250 ms doubling to 30 s. Returns the backend, or null when refused (logged).
    /// </summary>
    public async Task<IStepBackend?> JoinWithRetryAsync(string endpoint, Func<CancellationToken, Task<IStepBackend>> join, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(join);
        var backoff = TimeSpan.FromMilliseconds(250);
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            try
            {
                return await join(cancellationToken).ConfigureAwait(false);
            }
            catch (WorkerRefusedException ex)
            {
                WorkerLog.Refused(_logger, endpoint, ex.Message);
                return null;
            }
            catch (WorkerUnavailableException ex)
            {
                WorkerLog.JoinFailed(_logger, endpoint, ex.Message, backoff.TotalSeconds);
                await Task.Delay(backoff, _time, cancellationToken).ConfigureAwait(false);
                backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, TimeSpan.FromSeconds(30).Ticks));
            }
        }
    }
}
