using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace SearchOrchestrator.Server.Grpc;

/// <summary>What stopped a call's work.</summary>
internal enum CancellationCause
{
    /// <summary>Nothing has (yet).</summary>
    None,

    /// <summary>The caller cancelled, or its connection went away.</summary>
    Caller,

    /// <summary>The call's deadline passed.</summary>
    Deadline,

    /// <summary>The server stopped and its drain timeout passed before the call finished.</summary>
    Shutdown,
}

/// <summary>
/// One call's cancellation: its own token, its deadline and the server's shutdown linked into one
/// <see cref="Token"/>, with the one that fired first recorded in <see cref="Cause"/>, so the status a caller gets
/// says what happened rather than what the clock suggests.
/// </summary>
internal sealed class CallCancellation : IDisposable
{
    private readonly CancellationTokenSource _linked = new();
    private readonly CancellationTokenSource? _deadline;
    private readonly CancellationTokenRegistration[] _registrations;
    private int _cause;

    /// <summary>Links <paramref name="call"/>, a timer at <paramref name="deadline"/> (UTC; <see cref="DateTime.MaxValue"/> for none) and <paramref name="shutdown"/>.</summary>
    public CallCancellation(CancellationToken call, DateTime deadline, CancellationToken shutdown, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(time);
        if (deadline != DateTime.MaxValue)
        {
            var left = deadline.ToUniversalTime() - time.GetUtcNow().UtcDateTime;
            _deadline = new CancellationTokenSource(Timeout.InfiniteTimeSpan, time);
            if (left <= TimeSpan.Zero)
            {
                _deadline.Cancel();
            }
            else if (left < TimeSpan.FromDays(30))
            {
                _deadline.CancelAfter(left);
            }
        }

        _registrations =
        [
            (_deadline?.Token ?? CancellationToken.None).Register(() => Fire(CancellationCause.Deadline)),
            shutdown.Register(() => Fire(CancellationCause.Shutdown)),
            call.Register(() => Fire(CancellationCause.Caller)),
        ];
    }

    /// <summary>Fires when the first of the call, its deadline and the shutdown does.</summary>
    public CancellationToken Token => _linked.Token;

    /// <summary>Which one fired first; <see cref="CancellationCause.None"/> while none has.</summary>
    public CancellationCause Cause => (CancellationCause)Volatile.Read(ref _cause);

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var registration in _registrations)
        {
            registration.Dispose();
        }

        _deadline?.Dispose();
        _linked.Dispose();
    }

    private void Fire(CancellationCause cause)
    {
        if (Interlocked.CompareExchange(ref _cause, (int)cause, (int)CancellationCause.None) == (int)CancellationCause.None)
        {
            _linked.Cancel();
        }
    }
}

/// <summary>
/// Fires when the host has been stopping for its shutdown (drain) timeout: in-flight calls had their time to finish,
/// and what still runs is stopped with <see cref="CancellationCause.Shutdown"/>.
/// </summary>
internal sealed class ServerShutdown : IDisposable
{
    private readonly CancellationTokenSource _drained;
    private readonly CancellationTokenRegistration _stopping;

    /// <summary>Starts the drain timer (<see cref="HostOptions.ShutdownTimeout"/>) when <paramref name="lifetime"/> starts stopping.</summary>
    public ServerShutdown(IHostApplicationLifetime lifetime, IOptions<HostOptions> host, TimeProvider time)
    {
        _drained = new CancellationTokenSource(Timeout.InfiniteTimeSpan, time);
        var drain = host.Value.ShutdownTimeout;
        _stopping = lifetime.ApplicationStopping.Register(() => _drained.CancelAfter(drain));
    }

    /// <summary>Fires once the drain timeout has passed after the host started stopping.</summary>
    public CancellationToken Token => _drained.Token;

    /// <inheritdoc />
    public void Dispose()
    {
        _stopping.Dispose();
        _drained.Dispose();
    }
}
