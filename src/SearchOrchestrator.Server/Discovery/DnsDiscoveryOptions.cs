using Microsoft.Extensions.Options;

namespace SearchOrchestrator.Server.Discovery;

/// <summary>
/// One name to discover backends by (configuration <c>Discovery:Dns</c>): every address it resolves to is a backend
/// at <see cref="Port"/>, as a Kubernetes headless service lists one address per ready pod.
/// </summary>
public sealed class DnsDiscoveryOptions
{
    /// <summary>The configuration section these options bind from.</summary>
    public const string SectionName = "Discovery:Dns";

    /// <summary>The name to resolve, e.g. <c>searchorch-workers.searchorch.svc.cluster.local</c>.</summary>
    public string Name { get; set; } = string.Empty;

    /// <summary>The port every discovered backend listens on.</summary>
    public int Port { get; set; }

    /// <summary><c>http</c> or <c>https</c>: the scheme of the discovered backends' addresses; default <c>https</c>.</summary>
    public string Scheme { get; set; } = "https";

    /// <summary>How often the name is resolved again; default 30 s, at least 1 s.</summary>
    public TimeSpan RefreshInterval { get; set; } = TimeSpan.FromSeconds(30);
}

/// <summary>Validates <see cref="DnsDiscoveryOptions"/>, naming every bad setting.</summary>
public sealed class DnsDiscoveryOptionsValidator : IValidateOptions<DnsDiscoveryOptions>
{
    /// <inheritdoc />
    public ValidateOptionsResult Validate(string? name, DnsDiscoveryOptions options)
    {
        var failures = Check(options, DnsDiscoveryOptions.SectionName);
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    /// <summary>Every problem with <paramref name="options"/>, each named under <paramref name="section"/>.</summary>
    public static IReadOnlyList<string> Check(DnsDiscoveryOptions options, string section)
    {
        ArgumentNullException.ThrowIfNull(options);
        var failures = new List<string>();
        if (string.IsNullOrWhiteSpace(options.Name) || Uri.CheckHostName(options.Name) == UriHostNameType.Unknown)
        {
            failures.Add($"{section}:Name: '{options.Name}' is not a host name to resolve (e.g. searchorch-workers.searchorch.svc.cluster.local).");
        }

        if (options.Port is < 1 or > 65535)
        {
            failures.Add($"{section}:Port: must be 1 to 65535, got {options.Port}.");
        }

        if (options.Scheme is not ("http" or "https"))
        {
            failures.Add($"{section}:Scheme: must be http or https, got '{options.Scheme}'.");
        }

        if (options.RefreshInterval < TimeSpan.FromSeconds(1))
        {
            failures.Add($"{section}:RefreshInterval: must be at least 00:00:01, got {options.RefreshInterval}.");
        }

        return failures;
    }
}
