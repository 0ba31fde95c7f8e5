using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using SearchOrchestrator.Onnx.Manifests;
using SearchOrchestrator.Onnx.Repository;
using SearchOrchestrator.Server.OpenInference;
using SearchOrchestrator.Server.Workers;
using SearchOrchestrator.Workers;

namespace SearchOrchestrator.Server.Backends;

/// <summary>
/// Joins backends of every registered kind to the <see cref="WorkerPool"/>: each <see cref="BackendEndpoint"/> through
/// the <see cref="IBackendFactory"/> of its kind, chosen by name (<c>worker</c> through the worker protocol,
/// <c>kserve</c> through <see cref="KServeBackend.ConnectAsync"/>, a plug-in's kind through its own factory). Shared by
/// the configured endpoints and DNS discovery.
/// </summary>
public sealed class PoolMembership
{
    private readonly WorkerPool _pool;
    private readonly IReadOnlyDictionary<string, IBackendFactory> _factories;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;

    /// <summary>Creates the membership of <paramref name="pool"/> with the built-in kinds; <paramref name="repository"/> gives our manifests.</summary>
    public PoolMembership(WorkerPool pool, ModelRepository repository, TimeProvider? time = null, ILogger<PoolMembership>? logger = null)
        : this(pool, name => repository.Models.FirstOrDefault(m => m.Name == name && m.IsReady)?.Manifest, time, logger, name => repository.GetStages(name)?.Decoder.Description)
    {
        ArgumentNullException.ThrowIfNull(repository);
    }

    /// <summary>
    /// Creates the membership of <paramref name="pool"/> with the built-in kinds; <paramref name="manifest"/> gives our
    /// manifest of a model (null: not here), <paramref name="decoder"/> our pipeline's decoder (null: no such pipeline here).
    /// </summary>
    public PoolMembership(WorkerPool pool, Func<string, ModelManifest?> manifest, TimeProvider? time = null, ILogger<PoolMembership>? logger = null, Func<string, SearchOrchestrator.Denoising.DecoderDescription?>? decoder = null)
        : this(pool, [new WorkerBackendFactory(pool), new KServeBackendFactory(pool, manifest, decoder ?? (_ => null), time, logger)], time, logger)
    {
    }

    /// <summary>Creates the membership of <paramref name="pool"/> joining the kinds of <paramref name="factories"/>.</summary>
    /// <exception cref="ArgumentException">Two factories claim one kind.</exception>
    public PoolMembership(WorkerPool pool, IEnumerable<IBackendFactory> factories, TimeProvider? time = null, ILogger<PoolMembership>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(pool);
        ArgumentNullException.ThrowIfNull(factories);
        _pool = pool;
        var byKind = new Dictionary<string, IBackendFactory>(StringComparer.Ordinal);
        foreach (var factory in factories)
        {
            if (!byKind.TryAdd(factory.Kind, factory))
            {
                throw new ArgumentException($"two backend factories claim the kind '{factory.Kind}': {byKind[factory.Kind].GetType().Name} and {factory.GetType().Name}.", nameof(factories));
            }
        }

        _factories = byKind;
        _time = time ?? TimeProvider.System;
        _logger = logger ?? (ILogger)NullLogger.Instance;
    }

    /// <summary>The pool backends join.</summary>
    public WorkerPool Pool => _pool;

    /// <summary>The kinds this membership can join, by name.</summary>
    public IReadOnlyCollection<string> Kinds => [.. _factories.Keys.Order(StringComparer.Ordinal)];

    /// <summary>Connects the backend <paramref name="endpoint"/> names through its kind's factory and adds it to the pool, once.</summary>
    /// <exception cref="WorkerRefusedException">No factory for the kind, or the backend refused (protocol, model hash or metadata, an address already in the pool as another kind).</exception>
    /// <exception cref="WorkerUnavailableException">Not reachable or not ready.</exception>
    public async Task<IPooledBackend> JoinAsync(BackendEndpoint endpoint, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        if (_pool.Backends.FirstOrDefault(b => b.Name == endpoint.Address && b.Kind == endpoint.Kind) is { } existing)
        {
            return existing;
        }

        if (!_factories.TryGetValue(endpoint.Kind, out var factory))
        {
            throw new WorkerRefusedException(endpoint.Address, $"its kind '{endpoint.Kind}' is not registered here; registered: {string.Join(", ", Kinds)}.");
        }

        var backend = await factory.ConnectAsync(endpoint, cancellationToken).ConfigureAwait(false);
        if (!_pool.Add(backend))
        {
            await backend.DisposeAsync().ConfigureAwait(false);
            throw new WorkerRefusedException(endpoint.Address, "a backend of the same address is already in the pool; one address joins as one kind.");
        }

        var fit = backend.Link?.Fit;
        WorkerLog.Joined(_logger, backend.Kind, backend.Name, fit?.Latency.TotalMilliseconds ?? 0, (fit?.BytesPerSecond ?? 0) / 1e6, fit?.RSquared ?? 0);
        return backend;
    }

    /// <summary>
    /// Joins with retries (the <see cref="RetryPolicy"/>, from 250 ms up to <see cref="RetryPolicy.MaxBackoff"/>) until it
    /// succeeds, is refused, or <paramref name="cancellationToken"/> fires. Returns the backend, or null when refused (logged).
    /// </summary>
    public async Task<IPooledBackend?> JoinWithRetryAsync(BackendEndpoint endpoint, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        var untilJoined = RetryPolicy.Create(
            int.MaxValue,
            TimeSpan.FromMilliseconds(250),
            ex => ex is WorkerUnavailableException,
            _time,
            (ex, delay) => WorkerLog.JoinFailed(_logger, endpoint.Address, ex.Message, delay.TotalSeconds));
        try
        {
            return await untilJoined.ExecuteAsync(async ct => await JoinAsync(endpoint, ct).ConfigureAwait(false), cancellationToken).ConfigureAwait(false);
        }
        catch (WorkerRefusedException ex)
        {
            WorkerLog.Refused(_logger, endpoint.Address, ex.Message);
            return null;
        }
    }
}
