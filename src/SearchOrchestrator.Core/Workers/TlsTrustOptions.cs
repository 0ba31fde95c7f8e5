namespace SearchOrchestrator.Workers;

/// <summary>
/// How this process trusts the TLS certificates of the servers it calls (workers, KServe servers, the orchestrator a
/// worker joins): by default the system's trust store and the address's host name.
/// </summary>
public sealed record TlsTrustOptions
{
    /// <summary>
    /// A PEM file of CA certificates (a private CA); when set, a server certificate must chain to one of them (the
    /// system's store is not consulted). Default none.
    /// </summary>
    public string? CaBundlePath { get; init; }

    /// <summary>
    /// The name the server certificate must carry (a SAN), instead of the address's host; for workers dialled by pod IP
    /// whose certificates name their service (e.g. <c>searchorch-worker.searchorch.svc</c>). Default none.
    /// </summary>
    public string? ServerName { get; init; }

    /// <summary>Checks the settings under <paramref name="section"/>, naming each bad one.</summary>
    public IReadOnlyList<string> Validate(string section)
    {
        var failures = new List<string>();
        if (CaBundlePath is { Length: > 0 } && !File.Exists(CaBundlePath))
        {
            failures.Add($"{section}:CaBundlePath: the file '{CaBundlePath}' does not exist.");
        }

        if (ServerName is { } name && (name.Length == 0 || Uri.CheckHostName(name) == UriHostNameType.Unknown))
        {
            failures.Add($"{section}:ServerName: '{name}' is not a host name.");
        }

        return failures;
    }
}
