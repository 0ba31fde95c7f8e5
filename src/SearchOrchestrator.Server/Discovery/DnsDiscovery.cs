using System.Net;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace SearchOrchestrator.Server.Discovery;

/// <summary>Resolves a host name to all its addresses; <see cref="Dns.GetHostAddressesAsync(string, CancellationToken)"/> by default.</summary>
public delegate Task<IPAddress[]> DnsResolver(string name, CancellationToken cancellationToken);

/// <summary>One discovered backend: an address behind the name, at the configured port.</summary>
public sealed record DiscoveredEndpoint(IPAddress Address, int Port, string Scheme)
{
    /// <summary>The backend's gRPC address, <c>https://10.0.3.7:50052</c> (IPv6 in brackets).</summary>
    public Uri Uri => new UriBuilder(Scheme, Address.ToString(), Port).Uri;

    /// <inheritdoc />
    public override string ToString() => Uri.ToString().TrimEnd('/');
}

/// <summary>What one resolution changed: the endpoints that joined and the ones that left.</summary>
public sealed record DiscoveryChange(IReadOnlyList<DiscoveredEndpoint> Joined, IReadOnlyList<DiscoveredEndpoint> Left);

/// <summary>
/// Discovers backends by DNS: resolves one name to all its addresses now and every
/// <see cref="DnsDiscoveryOptions.RefreshInterval"/>, and reports the addresses that joined and left since the last
/// resolution, so backends come and go without a restart (a Kubernetes headless service lists one address per ready
/// pod). A failed resolution keeps the known endpoints: a DNS blip must not drain a fleet, and a backend that is really
/// gone fails its own health checks and deadlines. Time comes from a <see cref="TimeProvider"/> and resolution from a
/// <see cref="DnsResolver"/>, so tests drive both.
/// </summary>
public sealed class DnsDiscovery : BackgroundService
{
    private readonly DnsDiscoveryOptions _options;
    private readonly DnsResolver _resolver;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Lock _gate = new();
    private HashSet<DiscoveredEndpoint> _current = [];
    private PeriodicTimer? _timer;

    /// <summary>Creates the discovery; call <see cref="RefreshAsync"/> yourself or run it as a hosted service.</summary>
    /// <exception cref="ArgumentException">The options are invalid; the message names every bad setting.</exception>
    public DnsDiscovery(DnsDiscoveryOptions options, DnsResolver? resolver = null, TimeProvider? time = null, ILogger<DnsDiscovery>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        var failures = DnsDiscoveryOptionsValidator.Check(options, DnsDiscoveryOptions.SectionName, kinds: null); // the feed joins by kind
        if (failures.Count > 0)
        {
            throw new ArgumentException(string.Join(" ", failures), nameof(options));
        }

        _options = options;
        _resolver = resolver ?? ((name, cancellationToken) => Dns.GetHostAddressesAsync(name, cancellationToken));
        _time = time ?? TimeProvider.System;
        _logger = logger ?? NullLogger<DnsDiscovery>.Instance;
    }

    /// <summary>Raised once per endpoint that appears behind the name.</summary>
    public event Action<DiscoveredEndpoint>? Joined;

    /// <summary>Raised once per endpoint that no longer appears behind the name.</summary>
    public event Action<DiscoveredEndpoint>? Left;

    /// <summary>Raised after every resolution attempt, with what changed (empty lists when nothing did or it failed).</summary>
    public event Action<DiscoveryChange>? Refreshed;

    /// <summary>The endpoints behind the name as of the last successful resolution, ordered by address.</summary>
    public IReadOnlyList<DiscoveredEndpoint> Endpoints
    {
        get
        {
            lock (_gate)
            {
                return Ordered(_current);
            }
        }
    }

    /// <summary>Resolves the name once and reports what changed.</summary>
    public async Task<DiscoveryChange> RefreshAsync(CancellationToken cancellationToken = default)
    {
        IPAddress[] addresses;
        try
        {
            addresses = await _resolver(_options.Name, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            DiscoveryLog.Failed(_logger, _options.Name, ex.Message, Endpoints.Count);
            var none = new DiscoveryChange([], []);
            Refreshed?.Invoke(none);
            return none;
        }

        var resolved = addresses.Select(a => new DiscoveredEndpoint(a.IsIPv4MappedToIPv6 ? a.MapToIPv4() : a, _options.Port, _options.Scheme)).ToHashSet();
        DiscoveryChange change;
        lock (_gate)
        {
            change = new DiscoveryChange(Ordered(resolved.Except(_current)), Ordered(_current.Except(resolved)));
            _current = resolved;
        }

        foreach (var endpoint in change.Left)
        {
            DiscoveryLog.Left(_logger, _options.Name, endpoint.ToString());
            Left?.Invoke(endpoint);
        }

        foreach (var endpoint in change.Joined)
        {
            DiscoveryLog.Joined(_logger, _options.Name, endpoint.ToString());
            Joined?.Invoke(endpoint);
        }

        Refreshed?.Invoke(change);
        return change;
    }

    /// <summary>Resolves the name once before the host reports started, then refreshes in the background.</summary>
    public override async Task StartAsync(CancellationToken cancellationToken)
    {
        // The timer exists before the first resolution, so a tick while it runs is not lost.
        _timer ??= new PeriodicTimer(_options.RefreshInterval, _time);
        await RefreshAsync(cancellationToken).ConfigureAwait(false);
        await base.StartAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public override void Dispose()
    {
        _timer?.Dispose();
        base.Dispose();
    }

    /// <inheritdoc />
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var timer = _timer ?? throw new InvalidOperationException("StartAsync creates the timer.");
        while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
        {
            await RefreshAsync(stoppingToken).ConfigureAwait(false);
        }
    }

    private static List<DiscoveredEndpoint> Ordered(IEnumerable<DiscoveredEndpoint> endpoints) =>
        [.. endpoints.OrderBy(e => e.Address.AddressFamily).ThenBy(e => e.Address.ToString(), StringComparer.Ordinal)];
}

/// <summary>Log messages of DNS discovery.</summary>
internal static partial class DiscoveryLog
{
    [LoggerMessage(EventId = 4101, Level = LogLevel.Information, Message = "DNS discovery {Name}: {Endpoint} joined")]
    public static partial void Joined(ILogger logger, string name, string endpoint);

    [LoggerMessage(EventId = 4102, Level = LogLevel.Information, Message = "DNS discovery {Name}: {Endpoint} left")]
    public static partial void Left(ILogger logger, string name, string endpoint);

    [LoggerMessage(EventId = 4103, Level = LogLevel.Warning, Message = "DNS discovery {Name}: resolving failed ({Error}); keeping the {Count} known endpoints")]
    public static partial void Failed(ILogger logger, string name, string error, int count);
}
