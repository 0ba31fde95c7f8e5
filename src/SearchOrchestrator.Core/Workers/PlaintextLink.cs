namespace SearchOrchestrator.Workers;

/// <summary>
/// The rule for secrets on the wire: a shared secret or API key travels only over TLS or to this machine, never as
/// plaintext (<c>http://</c>) to another address.
/// </summary>
internal static class PlaintextLink
{
    /// <summary>True when <paramref name="endpoint"/> is <c>http://</c> to an address other than loopback.</summary>
    public static bool IsRemote(string endpoint) =>
        Uri.TryCreate(endpoint, UriKind.Absolute, out var uri) && uri.Scheme == Uri.UriSchemeHttp && !uri.IsLoopback;

    /// <summary>Why <paramref name="endpoint"/> may not carry <paramref name="secretSetting"/>.</summary>
    public static string Refusal(string endpoint, string secretSetting) =>
        $"{endpoint} is plaintext beyond this machine, so {secretSetting} would cross the network in the clear; use https:// (see README, TLS with a private CA).";
}
