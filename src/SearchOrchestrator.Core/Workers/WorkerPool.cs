using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace SearchOrchestrator.Workers;

/// <summary>
/// The backends this orchestrator uses, of every kind, in one collection by name (an address joins as one kind). A
/// worker joins (from configuration or by registering) only if it speaks this protocol version and every model it
/// shares with this orchestrator has the same SHA-256 here and there; its link is probed at several payload sizes so
/// placement knows α and β from the start. Other kinds are connected by their <see cref="IBackendFactory"/> and
/// <see cref="Add"/>ed. <see cref="MaintainAsync"/> brings recovered backends back into rotation.
/// </summary>
public sealed class WorkerPool : IAsyncDisposable
{
    /// <summary>The worker protocol version this build speaks.</summary>
    public const int ProtocolVersion = 1;

    private readonly Func<string, string, IWorkerClient> _connect;
    private readonly Func<string, string?> _localHash;
    private readonly Func<string, Denoising.DenoiserDescription?>? _localDenoiser;
    private readonly TimeProvider _time;
    private readonly ILogger? _logger;
    private readonly ConcurrentDictionary<string, IPooledBackend> _backends = new(StringComparer.Ordinal);
    private long _nextHandle;

    /// <summary>
    /// Creates an empty pool. <paramref name="connect"/> makes a client for an endpoint and this pool's session; <paramref name="localHash"/>
    /// gives this orchestrator's SHA-256 for a model name (null when it does not have the model);
    /// <paramref name="localDenoiser"/>, this orchestrator's description of a denoiser, lets a joining worker's forward
    /// passes be timed at two batch sizes before placement relies on them. <paramref name="logger"/> hears of workers
    /// leaving and rejoining the rotation.
    /// </summary>
    internal WorkerPool(Func<string, string, IWorkerClient> connect, Func<string, string?> localHash, WorkerOptions options, TimeProvider? time = null, Func<string, Denoising.DenoiserDescription?>? localDenoiser = null, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(connect);
        ArgumentNullException.ThrowIfNull(localHash);
        ArgumentNullException.ThrowIfNull(options);
        var failures = options.Validate();
        if (failures.Count > 0)
        {
            throw new ArgumentException(string.Join(" ", failures), nameof(options));
        }

        _connect = connect;
        _localHash = localHash;
        _localDenoiser = localDenoiser;
        Options = options;
        _time = time ?? TimeProvider.System;
        _logger = logger;
    }

    /// <summary>Identifies this orchestrator to workers; resident handles are unique within it.</summary>
    public string Session { get; } = Guid.NewGuid().ToString("N");

    /// <summary>The pool's settings.</summary>
    internal WorkerOptions Options { get; }

    /// <summary>Every backend in the pool, in rotation or not: workers first, then the other kinds, each by name.</summary>
    public IReadOnlyList<IPooledBackend> Backends => [.. _backends.Values.OrderBy(b => b.Kind != BackendKinds.Worker).ThenBy(b => b.Name, StringComparer.Ordinal)];

    /// <summary>The joined workers, in rotation or not.</summary>
    internal IReadOnlyList<WorkerBackend> Workers => [.. Backends.OfType<WorkerBackend>()];

    /// <summary>The stateless backends added next to the workers (e.g. Open Inference Protocol servers), in rotation or not.</summary>
    public IReadOnlyList<IStatelessBackend> StatelessBackends => [.. Backends.OfType<IStatelessBackend>()];

    /// <summary>The backends that host <paramref name="model"/>, in <see cref="Backends"/> order.</summary>
    public IEnumerable<IStepBackend> Hosting(string model) => Backends.Where(b => b.Hosts(model));

    /// <summary>The verifier <paramref name="name"/> as the pool's workers serve it; null when no worker in the pool does.</summary>
    internal RemoteVerifier? RemoteVerifier(string name) => Workers.Any(w => w.HostsVerifier(name)) ? new RemoteVerifier(name, this) : null;

    /// <summary>True when a backend called <paramref name="name"/> is in the pool.</summary>
    public bool Contains(string name) => _backends.ContainsKey(name);

    /// <summary>
    /// Adds a connected backend. Returns false (and leaves <paramref name="backend"/> to the caller) when a backend of
    /// the same name is already in the pool.
    /// </summary>
    public bool Add(IPooledBackend backend)
    {
        ArgumentNullException.ThrowIfNull(backend);
        return _backends.TryAdd(backend.Name, backend);
    }

    /// <summary>A new resident handle.</summary>
    public ulong NextHandle() => (ulong)Interlocked.Increment(ref _nextHandle);

    /// <summary>Connects, describes, checks and probes the worker at <paramref name="endpoint"/>, then adds it.</summary>
    /// <exception cref="WorkerRefusedException">The worker speaks another protocol version or serves a model with a different hash.</exception>
    /// <exception cref="WorkerUnavailableException">The worker cannot be reached.</exception>
    internal async Task<WorkerBackend> JoinAsync(string endpoint, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(endpoint);
        if (_backends.TryGetValue(endpoint, out var existing) && existing is WorkerBackend joined)
        {
            return joined;
        }

        var backend = await ConnectWorkerAsync(endpoint, cancellationToken).ConfigureAwait(false);
        if (Add(backend))
        {
            return backend;
        }

        // Another join of the same address won the race.
        await backend.DisposeAsync().ConfigureAwait(false);
        return _backends.TryGetValue(endpoint, out var winner) && winner is WorkerBackend worker
            ? worker
            : throw new WorkerRefusedException(endpoint, $"is already in the pool as a {winner?.Kind} backend; one address joins as one kind.");
    }

    /// <summary>
    /// Connects, describes, checks, probes and times the worker at <paramref name="endpoint"/> without adding it (the
    /// <c>worker</c> kind's <see cref="IBackendFactory"/> work).
    /// </summary>
    /// <exception cref="WorkerRefusedException">
    /// The address is in the pool as another kind, or the worker speaks another protocol version or serves a model with
    /// a different hash.
    /// </exception>
    /// <exception cref="WorkerUnavailableException">The worker cannot be reached.</exception>
    internal async Task<WorkerBackend> ConnectWorkerAsync(string endpoint, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(endpoint);
        if (_backends.TryGetValue(endpoint, out var other) && other is not WorkerBackend)
        {
            throw new WorkerRefusedException(endpoint, $"is already in the pool as a {other.Kind} backend; one address joins as one kind.");
        }

        if (Options.Secret is { Length: > 0 } && PlaintextLink.IsRemote(endpoint))
        {
            throw new WorkerRefusedException(endpoint, PlaintextLink.Refusal(endpoint, $"{WorkerOptions.SectionName}:Secret"));
        }

        var client = _connect(endpoint, Session);
        WorkerBackend? backend = null;
        try
        {
            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            deadline.CancelAfter(Options.CallTimeout);
            WorkerDescription description;
            try
            {
                description = (await client.DescribeAsync(deadline.Token).ConfigureAwait(false)).Value;
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                throw new WorkerUnavailableException(endpoint, $"did not answer Describe within {Options.CallTimeout.TotalSeconds:0.###} s.");
            }

            Check(endpoint, description);
            backend = new WorkerBackend(client, description, Options, _time, _logger);
            await backend.ProbeAsync(cancellationToken).ConfigureAwait(false);
            foreach (var model in description.Models.Where(m => m.Kind == "denoiser"))
            {
                if (_localDenoiser?.Invoke(model.Name) is { } denoiser)
                {
                    await backend.CalibrateAsync(denoiser, cancellationToken).ConfigureAwait(false);
                }
            }

            return backend;
        }
        catch
        {
            if (backend is not null)
            {
                await backend.DisposeAsync().ConfigureAwait(false);
            }
            else
            {
                await client.DisposeAsync().ConfigureAwait(false);
            }

            throw;
        }
    }

    /// <summary>
    /// Removes a backend from the pool (a worker's resident nodes are recomputed where needed; steps queued on a
    /// stateless backend fail and rerun elsewhere).
    /// </summary>
    public async Task LeaveAsync(string endpoint)
    {
        if (_backends.TryRemove(endpoint, out var backend))
        {
            (backend as WorkerBackend)?.TakeOutOfRotation();
            await backend.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Until cancelled, every <see cref="WorkerOptions.HealthCheckInterval"/>: health-checks the backends out of
    /// rotation, bringing back those that pass. (Links of backends in rotation are refitted from their real traffic.)
    /// </summary>
    public async Task MaintainAsync(CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            await Task.Delay(Options.HealthCheckInterval, _time, cancellationToken).ConfigureAwait(false);
            foreach (var backend in Backends.Where(b => !b.IsAvailable))
            {
                await backend.CheckHealthAsync(cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        foreach (var backend in _backends.Values)
        {
            await backend.DisposeAsync().ConfigureAwait(false);
        }

        _backends.Clear();
    }

    private void Check(string endpoint, WorkerDescription description)
    {
        if (description.ProtocolVersion != ProtocolVersion)
        {
            throw new WorkerRefusedException(endpoint, $"speaks worker protocol version {description.ProtocolVersion}; this orchestrator speaks {ProtocolVersion}.");
        }

        foreach (var model in description.Models.Where(m => m.Sha256.Length > 0))
        {
            var local = _localHash(model.Name);
            if (local is not null && !string.Equals(local, model.Sha256, StringComparison.OrdinalIgnoreCase))
            {
                throw new WorkerRefusedException(endpoint, $"model '{model.Name}' has SHA-256 {model.Sha256} there but {local} here; deploy the same model.onnx to both.");
            }
        }
    }
}

/// <summary>A worker may not join: another protocol version, a mismatched model, or a wrong secret.</summary>
public sealed class WorkerRefusedException(string worker, string message) : Exception($"worker {worker} refused: {message}")
{
    /// <summary>The worker's endpoint.</summary>
    public string Worker { get; } = worker;
}
