using Microsoft.Extensions.Logging;
using SearchOrchestrator.Workers;

namespace SearchOrchestrator.Server.OpenInference;

/// <summary>
/// The configured <c>kserve</c> verifiers (<c>Verifiers:Remote</c>). At start each one joins (its server's readiness
/// and metadata are checked); one that cannot is logged and tries again on its first batch, so a verifier service
/// that is down affects only the searches that use it.
/// </summary>
public sealed class KServeVerifiers : IDisposable
{
    private readonly ILogger _logger;

    /// <summary>Creates a verifier per entry of <paramref name="options"/>.</summary>
    /// <param name="options">The verifiers' settings.</param>
    /// <param name="time">The clock calls are timed with.</param>
    /// <param name="loggers">Where joins are logged.</param>
    /// <param name="probe">How links are probed when a verifier joins (as for kserve backends).</param>
    public KServeVerifiers(IEnumerable<KServeVerifierOptions> options, TimeProvider? time = null, ILoggerFactory? loggers = null, WorkerOptions? probe = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        _logger = loggers?.CreateLogger<KServeVerifiers>() ?? Microsoft.Extensions.Logging.Abstractions.NullLogger<KServeVerifiers>.Instance;
        All = [.. options.Select(o => new KServeVerifier(o, time, loggers?.CreateLogger<KServeVerifier>(), probe))];
    }

    /// <summary>The verifiers, in configuration order.</summary>
    public IReadOnlyList<KServeVerifier> All { get; }

    /// <summary>Joins every verifier; one that cannot join is logged (it tries again on its first batch).</summary>
    public async Task JoinAllAsync(CancellationToken cancellationToken)
    {
        foreach (var verifier in All)
        {
            try
            {
                await verifier.JoinAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (NoBackendException ex)
            {
                OpenInferenceLog.VerifierNotJoined(_logger, verifier.Name, ex.Message);
            }
        }
    }

    /// <summary>Closes every verifier's channel.</summary>
    public void Dispose()
    {
        foreach (var verifier in All)
        {
            verifier.Dispose();
        }
    }
}
