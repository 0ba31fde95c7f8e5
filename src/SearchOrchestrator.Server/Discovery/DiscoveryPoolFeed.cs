using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using SearchOrchestrator.Server.Backends;
using SearchOrchestrator.Workers;

namespace SearchOrchestrator.Server.Discovery;

/// <summary>
/// Feeds the pool from DNS discovery, without a restart: after every resolution, addresses behind the name that are not
/// in the pool join it (as backends of <see cref="DnsDiscoveryOptions.Kind"/>: workers, <c>kserve</c> servers, or a
/// registered kind of a plug-in's), and
/// backends this feed joined whose address is gone leave it. An address that cannot be reached yet is tried again at the
/// next resolution; one that is refused (mismatched model) is not tried again until it leaves and comes back.
/// Reconciliations run one at a time, in the order of the resolutions.
/// </summary>
public sealed class DiscoveryPoolFeed : IHostedService, IDisposable
{
    private readonly DnsDiscovery _discovery;
    private readonly PoolMembership _membership;
    private readonly DnsDiscoveryOptions _options;
    private readonly ILogger _logger;
    private readonly Lock _gate = new();
    private readonly CancellationTokenSource _stopping = new();
    private readonly HashSet<string> _joined = new(StringComparer.Ordinal);
    private readonly HashSet<string> _refused = new(StringComparer.Ordinal);
    private Task _tail = Task.CompletedTask;

    /// <summary>Subscribes to <paramref name="discovery"/>'s resolutions.</summary>
    public DiscoveryPoolFeed(DnsDiscovery discovery, PoolMembership membership, DnsDiscoveryOptions options, ILogger<DiscoveryPoolFeed>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(discovery);
        ArgumentNullException.ThrowIfNull(membership);
        ArgumentNullException.ThrowIfNull(options);
        _discovery = discovery;
        _membership = membership;
        _options = options;
        _logger = logger ?? NullLogger<DiscoveryPoolFeed>.Instance;
        _discovery.Refreshed += OnRefreshed;
    }

    /// <summary>The backends this feed joined and that are still behind the name.</summary>
    public IReadOnlyList<string> Joined
    {
        get
        {
            lock (_gate)
            {
                return [.. _joined.Order(StringComparer.Ordinal)];
            }
        }
    }

    /// <summary>Completes when every reconciliation queued so far has finished.</summary>
    public Task Idle
    {
        get
        {
            lock (_gate)
            {
                return _tail;
            }
        }
    }

    /// <summary>Reconciles with the endpoints discovery already knows (it may have resolved before this started).</summary>
    public Task StartAsync(CancellationToken cancellationToken)
    {
        Queue();
        return Task.CompletedTask;
    }

    /// <summary>Stops joining; waits for the reconciliation under way.</summary>
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        _discovery.Refreshed -= OnRefreshed;
        await _stopping.CancelAsync().ConfigureAwait(false);
        await Idle.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _discovery.Refreshed -= OnRefreshed;
        _stopping.Dispose();
    }

    private void OnRefreshed(DiscoveryChange change) => Queue();

    private void Queue()
    {
        lock (_gate)
        {
            _tail = ReconcileAfterAsync(_tail);
        }
    }

    private async Task ReconcileAfterAsync(Task previous)
    {
        await previous.ConfigureAwait(false);
        if (_stopping.IsCancellationRequested)
        {
            return;
        }

        try
        {
            await ReconcileAsync(_stopping.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
        {
        }
    }

    private async Task ReconcileAsync(CancellationToken cancellationToken)
    {
        var wanted = _discovery.Endpoints.Select(e => e.ToString()).ToHashSet(StringComparer.Ordinal);
        List<string> leaving, joining;
        lock (_gate)
        {
            leaving = [.. _joined.Where(e => !wanted.Contains(e))];
            _refused.IntersectWith(wanted);
            joining = [.. wanted.Where(e => !_joined.Contains(e) && !_refused.Contains(e)).Order(StringComparer.Ordinal)];
        }

        foreach (var endpoint in leaving)
        {
            await _membership.Pool.LeaveAsync(endpoint).ConfigureAwait(false);
            lock (_gate)
            {
                _joined.Remove(endpoint);
            }

            DiscoveryFeedLog.Left(_logger, endpoint);
        }

        await Task.WhenAll(joining.Select(endpoint => JoinAsync(endpoint, cancellationToken))).ConfigureAwait(false);
    }

    private async Task JoinAsync(string endpoint, CancellationToken cancellationToken)
    {
        try
        {
            await _membership.JoinAsync(_options.Endpoint(endpoint), cancellationToken).ConfigureAwait(false);
            lock (_gate)
            {
                _joined.Add(endpoint);
            }
        }
        catch (WorkerRefusedException ex)
        {
            lock (_gate)
            {
                _refused.Add(endpoint);
            }

            DiscoveryFeedLog.Refused(_logger, endpoint, ex.Message);
        }
        catch (WorkerUnavailableException ex)
        {
            DiscoveryFeedLog.NotYet(_logger, endpoint, ex.Message);
        }
    }
}

/// <summary>Log messages of the discovery feed.</summary>
internal static partial class DiscoveryFeedLog
{
    [LoggerMessage(EventId = 4111, Level = LogLevel.Information, Message = "Discovered backend {Endpoint} left; removed from the pool")]
    public static partial void Left(ILogger logger, string endpoint);

    [LoggerMessage(EventId = 4112, Level = LogLevel.Warning, Message = "Discovered backend {Endpoint} refused: {Reason}")]
    public static partial void Refused(ILogger logger, string endpoint, string reason);

    [LoggerMessage(EventId = 4113, Level = LogLevel.Warning, Message = "Discovered backend {Endpoint} cannot join yet ({Reason}); trying again at the next resolution")]
    public static partial void NotYet(ILogger logger, string endpoint, string reason);
}
