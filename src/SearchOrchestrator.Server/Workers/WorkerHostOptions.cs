using Microsoft.Extensions.Options;
using SearchOrchestrator.Workers;

namespace SearchOrchestrator.Server.Workers;

/// <summary>How <c>searchorch worker</c> serves (configuration section <c>Worker</c>).</summary>
public sealed record WorkerHostOptions
{
    /// <summary>The configuration section these options bind from.</summary>
    public const string SectionName = "Worker";

    /// <summary>
    /// The shared secret callers of both protocols must send in <c>x-worker-secret</c> or <c>x-api-key</c>, and the one sent when registering with
    /// <see cref="Join"/>. Default none: every caller is served (fine on loopback; set it anywhere else).
    /// </summary>
    public string? Secret { get; init; }

    /// <summary>Bytes of resident node state this worker holds before refusing more. Default 1 GiB.</summary>
    public long MaxResidentBytes { get; init; } = 1L << 30;

    /// <summary>
    /// Bytes of resident node state one session (one orchestrator's run) may hold, so a runaway or dead orchestrator
    /// cannot take the whole of <see cref="MaxResidentBytes"/>. Default: half of it.
    /// </summary>
    public long? MaxResidentBytesPerSession { get; init; }

    /// <summary>
    /// A session unused this long (no put, step, fork, fetch, verify or release) loses its resident nodes: an
    /// orchestrator that was killed never releases them. Default 10 minutes.
    /// </summary>
    public TimeSpan SessionIdleTimeout { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>An orchestrator to register with at start (e.g. <c>https://orchestrator:50051</c>). Default none.</summary>
    public string? Join { get; init; }

    /// <summary>The address the orchestrator should call this worker at. Default: the first address it listens on.</summary>
    public string? Advertise { get; init; }

    /// <summary>The device name reported by Describe. Default <c>cpu</c> (or <c>cuda:0</c> when CUDA runs).</summary>
    public string? Device { get; init; }

    /// <summary>How often a worker with <see cref="Join"/> registers again once accepted (an orchestrator that restarted has forgotten it). Default 30 s.</summary>
    public TimeSpan RegistrationInterval { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>How the certificate of the orchestrator named by <see cref="Join"/> is trusted (<c>Worker:Tls:CaBundlePath</c>, <c>Worker:Tls:ServerName</c>).</summary>
    public TlsTrustOptions Tls { get; init; } = new();

    /// <summary>The largest message the worker accepts. Default 64 MiB (a Step batch of 64 rows is about 1.2 MB).</summary>
    public int MaxReceiveMessageSize { get; init; } = 64 << 20;

    /// <summary>
    /// The stages of text-to-image pipelines this worker serves, comma-separated: <c>denoiser</c> (steps, with the prompts
    /// encoded by its own text encoder) and <c>decoder</c> (Decode). Default both; one of them makes a worker that serves
    /// only that stage, so a pipeline can be split over machines (the decoder on one, the denoiser on another).
    /// </summary>
    public string PipelineStages { get; init; } = $"{StageNames.Denoiser},{StageNames.Decoder}";

    /// <summary>The stages of <see cref="PipelineStages"/>, parsed.</summary>
    internal IReadOnlyList<string> ServedStages => [.. PipelineStages.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Distinct(StringComparer.Ordinal)];
}

/// <summary>Validates <see cref="WorkerHostOptions"/>, naming every bad setting.</summary>
internal sealed class WorkerHostOptionsValidator : IValidateOptions<WorkerHostOptions>
{
    public ValidateOptionsResult Validate(string? name, WorkerHostOptions options)
    {
        var failures = new List<string>();
        if (options.MaxResidentBytes < 1)
        {
            failures.Add($"{WorkerHostOptions.SectionName}:MaxResidentBytes must be positive, got {options.MaxResidentBytes}.");
        }

        if (options.MaxReceiveMessageSize < 1024)
        {
            failures.Add($"{WorkerHostOptions.SectionName}:MaxReceiveMessageSize must be at least 1024 bytes, got {options.MaxReceiveMessageSize}.");
        }

        if (options.MaxResidentBytesPerSession is < 1 || options.MaxResidentBytesPerSession > options.MaxResidentBytes)
        {
            failures.Add($"{WorkerHostOptions.SectionName}:MaxResidentBytesPerSession must lie in 1 .. MaxResidentBytes ({options.MaxResidentBytes}), got {options.MaxResidentBytesPerSession}.");
        }

        if (options.SessionIdleTimeout <= TimeSpan.Zero)
        {
            failures.Add($"{WorkerHostOptions.SectionName}:SessionIdleTimeout must be positive, got {options.SessionIdleTimeout}.");
        }

        if (options.RegistrationInterval <= TimeSpan.Zero)
        {
            failures.Add($"{WorkerHostOptions.SectionName}:RegistrationInterval must be positive, got {options.RegistrationInterval}.");
        }

        if (options.ServedStages.FirstOrDefault(s => s is not (StageNames.Denoiser or StageNames.Decoder)) is { } stage)
        {
            failures.Add($"{WorkerHostOptions.SectionName}:PipelineStages lists '{stage}'; the stages a worker serves are '{StageNames.Denoiser}' and '{StageNames.Decoder}', comma-separated.");
        }

        failures.AddRange(options.Tls.Validate($"{WorkerHostOptions.SectionName}:Tls"));
        foreach (var (setting, value) in new[] { ("Join", options.Join), ("Advertise", options.Advertise) })
        {
            if (value is { Length: > 0 } && (!Uri.TryCreate(value, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps)))
            {
                failures.Add($"{WorkerHostOptions.SectionName}:{setting} must be an http:// or https:// address, got '{value}'.");
            }
        }

        if (options.Join is { Length: > 0 } && string.IsNullOrEmpty(options.Secret))
        {
            failures.Add($"{WorkerHostOptions.SectionName}:Join needs {WorkerHostOptions.SectionName}:Secret: orchestrators refuse workers that register without the shared secret.");
        }
        else if (options.Join is { Length: > 0 } join && PlaintextLink.IsRemote(join))
        {
            failures.Add($"{WorkerHostOptions.SectionName}:Join: {PlaintextLink.Refusal(join, $"{WorkerHostOptions.SectionName}:Secret")}");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
