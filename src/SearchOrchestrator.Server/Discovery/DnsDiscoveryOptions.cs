using Microsoft.Extensions.Options;
using SearchOrchestrator.Server.OpenInference;
using SearchOrchestrator.Workers;

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

    /// <summary>
    /// What the discovered addresses are, by backend kind: <c>worker</c> (default; <c>searchorch worker</c>s joined
    /// through the worker protocol), <c>kserve</c> (Open Inference Protocol servers, connected with the
    /// <see cref="KServe"/> settings), or any kind a factory was registered for (<c>AddBackendKind</c>), which joins each
    /// address without settings.
    /// </summary>
    public string Kind { get; set; } = BackendKinds.Worker;

    /// <summary>
    /// With <see cref="Kind"/> <c>kserve</c>: the settings every discovered server shares (models mapping, timeouts,
    /// API key, batch size), as under <c>Backends:KServe:n</c>; its <c>Endpoint</c> is each discovered address.
    /// </summary>
    public KServeEndpointOptions KServe { get; set; } = new();

    /// <summary>The backend to join for <paramref name="address"/>, discovered behind <see cref="Name"/>: of <see cref="Kind"/>, with the kind's settings.</summary>
    public BackendEndpoint Endpoint(string address) =>
        new(Kind, address) { Settings = Kind == BackendKinds.KServe ? KServe.WithEndpoint(address) : null };
}

/// <summary>
/// Validates <see cref="DnsDiscoveryOptions"/>, naming every bad setting. <see cref="DnsDiscoveryOptions.Kind"/> must be
/// a registered kind: <paramref name="registeredKinds"/> lists them, asked only for a kind other than the built-in
/// <c>worker</c> and <c>kserve</c> (listing them resolves every registered factory).
/// </summary>
public sealed class DnsDiscoveryOptionsValidator(Func<IReadOnlyCollection<string>>? registeredKinds = null) : IValidateOptions<DnsDiscoveryOptions>
{
    private static readonly IReadOnlyCollection<string> BuiltInKinds = [BackendKinds.Worker, BackendKinds.KServe];

    /// <inheritdoc />
    public ValidateOptionsResult Validate(string? name, DnsDiscoveryOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var kinds = BuiltInKinds.Contains(options.Kind) || registeredKinds is null ? BuiltInKinds : registeredKinds();
        var failures = Check(options, DnsDiscoveryOptions.SectionName, kinds);
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    /// <summary>Every problem with <paramref name="options"/>, each named under <paramref name="section"/>, for a host with the built-in kinds.</summary>
    public static IReadOnlyList<string> Check(DnsDiscoveryOptions options, string section) => Check(options, section, BuiltInKinds);

    /// <summary>
    /// Every problem with <paramref name="options"/>, each named under <paramref name="section"/>; the kind must be one of
    /// <paramref name="kinds"/> (null: any, for discovery itself, which only resolves the name).
    /// </summary>
    public static IReadOnlyList<string> Check(DnsDiscoveryOptions options, string section, IReadOnlyCollection<string>? kinds)
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

        if (kinds is not null && !kinds.Contains(options.Kind))
        {
            failures.Add($"{section}:Kind: must be {(kinds.Count == 1 ? kinds.Single() : $"{string.Join(", ", kinds.SkipLast(1))} or {kinds.Last()}")}, got '{options.Kind}'.");
        }
        else if (options.Kind == BackendKinds.KServe)
        {
            // The template's endpoint is each discovered address; check the rest as a configured server would be.
            var template = options.KServe.WithEndpoint($"{(options.Scheme is "http" ? "http" : "https")}://127.0.0.1:1"); // a loopback placeholder: the real addresses come from DNS
            const string Listed = $"{KServeOptions.SectionName}:KServe:0";
            failures.AddRange(KServeOptionsValidator.Check(new KServeOptions { KServe = [template] })
                .Select(f => f.Replace(Listed, $"{section}:KServe", StringComparison.Ordinal)));
        }

        return failures;
    }
}
