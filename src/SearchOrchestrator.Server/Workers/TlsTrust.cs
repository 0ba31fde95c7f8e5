using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using SearchOrchestrator.Workers;

namespace SearchOrchestrator.Server.Workers;

/// <summary>
/// The HTTP handler behind every outgoing gRPC channel: HTTP/2 over several connections, and a server certificate
/// checked against <see cref="TlsTrustOptions"/> (a private CA bundle, an expected server name).
/// </summary>
public static class TlsTrust
{
    /// <summary>A handler that trusts what <paramref name="trust"/> says (the system's defaults when null or empty).</summary>
    /// <exception cref="InvalidOperationException">The CA bundle cannot be read or holds no certificate.</exception>
    public static SocketsHttpHandler CreateHandler(TlsTrustOptions? trust)
    {
        var handler = new SocketsHttpHandler { EnableMultipleHttp2Connections = true };
        if (trust is null || (string.IsNullOrEmpty(trust.CaBundlePath) && string.IsNullOrEmpty(trust.ServerName)))
        {
            return handler;
        }

        var roots = LoadBundle(trust.CaBundlePath);
        handler.SslOptions.RemoteCertificateValidationCallback = (_, certificate, chain, errors) =>
            Validate(certificate as X509Certificate2, chain, errors, roots, trust.ServerName);
        return handler;
    }

    /// <summary>
    /// True when the certificate chains to <paramref name="roots"/> (or, without roots, to the system's store) and
    /// carries <paramref name="serverName"/> (or, without one, the host that was dialled).
    /// </summary>
    internal static bool Validate(X509Certificate2? certificate, X509Chain? presented, SslPolicyErrors errors, X509Certificate2Collection? roots, string? serverName)
    {
        if (certificate is null || errors.HasFlag(SslPolicyErrors.RemoteCertificateNotAvailable))
        {
            return false;
        }

        var nameOk = serverName is { Length: > 0 }
            ? certificate.MatchesHostname(serverName)
            : !errors.HasFlag(SslPolicyErrors.RemoteCertificateNameMismatch);
        if (!nameOk)
        {
            return false;
        }

        if (roots is null)
        {
            return !errors.HasFlag(SslPolicyErrors.RemoteCertificateChainErrors);
        }

        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(roots);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        if (presented is not null)
        {
            foreach (var element in presented.ChainElements)
            {
                chain.ChainPolicy.ExtraStore.Add(element.Certificate);
            }
        }

        return chain.Build(certificate);
    }

    private static X509Certificate2Collection? LoadBundle(string? path)
    {
        if (string.IsNullOrEmpty(path))
        {
            return null;
        }

        var roots = new X509Certificate2Collection();
        try
        {
            roots.ImportFromPemFile(path);
        }
        catch (Exception ex) when (ex is IOException or CryptographicException or UnauthorizedAccessException)
        {
            throw new InvalidOperationException($"CaBundlePath: cannot read the CA bundle '{path}': {ex.Message}", ex);
        }

        return roots.Count > 0 ? roots : throw new InvalidOperationException($"CaBundlePath: '{path}' holds no PEM certificate.");
    }
}
