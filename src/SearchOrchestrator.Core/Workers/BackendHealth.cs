using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace SearchOrchestrator.Workers;

/// <summary>
/// The one health and rotation policy of every backend kind (as YARP's <c>ConsecutiveFailuresHealthPolicy</c> updates a
/// destination's state): <see cref="WorkerOptions.MaxConsecutiveFailures"/> failures in a row (or one the transport
/// knows is fatal, such as a refused connection) take the backend out of rotation; a passed health check brings it
/// back; a refusal the operator must fix takes it out for good. Every change is logged the same way for every kind.
/// </summary>
public sealed class BackendHealth
{
    private readonly string _kind;
    private readonly string _name;
    private readonly int _maxConsecutiveFailures;
    private readonly ILogger _logger;
    private readonly Lock _gate = new();
    private int _consecutiveFailures;
    private volatile bool _inRotation = true;
    private string? _lastFailure;
    private string? _refusal;

    /// <summary>The health of backend <paramref name="name"/> of kind <paramref name="kind"/> (one of <see cref="BackendKinds"/>, or a plug-in's).</summary>
    public BackendHealth(string kind, string name, int maxConsecutiveFailures, ILogger? logger = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(kind);
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxConsecutiveFailures, 1);
        _kind = kind;
        _name = name;
        _maxConsecutiveFailures = maxConsecutiveFailures;
        _logger = logger ?? NullLogger.Instance;
    }

    /// <summary>True while the backend takes work.</summary>
    public bool InRotation => _inRotation;

    /// <summary>Failures since the last success.</summary>
    public int ConsecutiveFailures => Volatile.Read(ref _consecutiveFailures);

    /// <summary>The latest failure's message, for operators and for errors that say why no backend was left; null before any.</summary>
    public string? LastFailure => Volatile.Read(ref _lastFailure);

    /// <summary>Why the backend left the rotation for good; null while it has not.</summary>
    public string? Refusal => Volatile.Read(ref _refusal);

    /// <summary>A call succeeded: the failure count starts again.</summary>
    public void Succeeded() => Volatile.Write(ref _consecutiveFailures, 0);

    /// <summary>A call failed; past the limit, or at once when <paramref name="fatal"/>, the backend leaves the rotation.</summary>
    public void Failed(string message, bool fatal = false)
    {
        Diagnostics.SearchMetrics.WorkerFailures.Add(1, new KeyValuePair<string, object?>("worker", _name));
        Volatile.Write(ref _lastFailure, message);
        var failures = Interlocked.Increment(ref _consecutiveFailures);
        if (failures >= _maxConsecutiveFailures || fatal)
        {
            Leave(() => BackendLog.OutOfRotation(_logger, _kind, _name, failures, message));
        }
    }

    /// <summary>Takes the backend out of rotation now (drain, or a fault seen elsewhere) until a health check passes.</summary>
    public void TakeOutOfRotation() => Leave(() => BackendLog.Drained(_logger, _kind, _name));

    /// <summary>Takes the backend out of rotation for good: a fault only its operator can fix (<paramref name="reason"/> says how).</summary>
    public void Refuse(string reason)
    {
        if (Interlocked.CompareExchange(ref _refusal, reason, null) is null)
        {
            Volatile.Write(ref _lastFailure, reason);
            _inRotation = false;
            BackendLog.Refused(_logger, _kind, _name, reason);
        }
    }

    /// <summary>
    /// Records a health check's answer: a healthy backend out of rotation comes back (unless refused for good).
    /// Returns whether the backend may take work.
    /// </summary>
    public bool Checked(bool healthy)
    {
        if (!healthy || Refusal is not null)
        {
            return false;
        }

        lock (_gate)
        {
            if (!_inRotation)
            {
                Volatile.Write(ref _consecutiveFailures, 0);
                _inRotation = true;
                BackendLog.BackInRotation(_logger, _kind, _name);
            }
        }

        return true;
    }

    private void Leave(Action log)
    {
        lock (_gate)
        {
            if (_inRotation)
            {
                _inRotation = false;
                log();
            }
        }
    }
}

/// <summary>Log messages of backends' rotation, the same for every kind.</summary>
internal static partial class BackendLog
{
    [LoggerMessage(EventId = 5001, Level = LogLevel.Warning, Message = "{Kind} backend {Backend} left the rotation after {Failures} failure(s) in a row; the last: {Failure}")]
    public static partial void OutOfRotation(ILogger logger, string kind, string backend, int failures, string failure);

    [LoggerMessage(EventId = 5002, Level = LogLevel.Information, Message = "{Kind} backend {Backend} passed its health check and is back in rotation")]
    public static partial void BackInRotation(ILogger logger, string kind, string backend);

    [LoggerMessage(EventId = 5003, Level = LogLevel.Error, Message = "{Kind} backend {Backend} left the rotation for good: {Reason}")]
    public static partial void Refused(ILogger logger, string kind, string backend, string reason);

    [LoggerMessage(EventId = 5004, Level = LogLevel.Information, Message = "{Kind} backend {Backend} was taken out of rotation")]
    public static partial void Drained(ILogger logger, string kind, string backend);
}
