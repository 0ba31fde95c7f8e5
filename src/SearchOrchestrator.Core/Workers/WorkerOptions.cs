namespace SearchOrchestrator.Workers;

/// <summary>How the orchestrator uses remote workers (configuration section <c>Workers</c>).</summary>
public sealed record WorkerOptions
{
    /// <summary>The configuration section these options bind from.</summary>
    public const string SectionName = "Workers";

    /// <summary>Worker endpoints to join at start (e.g. <c>https://gpu-3:50061</c>). Default none.</summary>
    public IReadOnlyList<string> Endpoints { get; init; } = [];

    /// <summary>
    /// The shared secret: sent to workers on every call, and required of workers that register themselves.
    /// Default none (workers that register are refused; listed ones are called without a secret).
    /// </summary>
    public string? Secret { get; init; }

    /// <summary>How remote workers hold node states: <c>resident</c> (default) or <c>stateless</c>.</summary>
    public string Mode { get; init; } = WorkerModes.Resident;

    /// <summary>Run steps on this process's own ONNX Runtime sessions too. Default true.</summary>
    public bool UseLocal { get; init; } = true;

    /// <summary>
    /// Where a text-to-image pipeline's decoder (its VAE decoder) runs: <c>auto</c> (default: per latent, on whichever of
    /// this process and the remote backends serving the decoder — workers hosting the pipeline, <c>kserve</c> servers
    /// mapping its <c>vae_decoder</c> — finishes it soonest once moving the latent and the image is counted), <c>local</c>
    /// (this process only) or <c>workers</c> (only those remote backends).
    /// </summary>
    public string DecoderPlacement { get; init; } = DecoderPlacements.Auto;

    /// <summary>
    /// How much sooner (as a fraction) another backend must finish before nodes resident on a worker move there.
    /// Default 0.25: moving on a near-tie trades bytes for noise in the estimates and could bounce nodes between
    /// workers. 1 pins resident nodes to their worker while it is in rotation.
    /// </summary>
    public double MoveMargin { get; init; } = 0.25;

    /// <summary>Deadline of one worker call. Default 30 s.</summary>
    public TimeSpan CallTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Extra deadline per step an Advance call asks for. Default 2 s.</summary>
    public TimeSpan StepTimeout { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>Retries of a call that may safely be repeated (Step, Fetch, Verify, Probe), with doubling backoff. Default 2.</summary>
    public int MaxRetries { get; init; } = 2;

    /// <summary>The first retry's backoff. Default 100 ms.</summary>
    public TimeSpan RetryBackoff { get; init; } = TimeSpan.FromMilliseconds(100);

    /// <summary>Consecutive failures that take a worker out of rotation until it passes a health check. Default 3.</summary>
    public int MaxConsecutiveFailures { get; init; } = 3;

    /// <summary>How often workers out of rotation are health-checked and idle links re-probed. Default 5 s.</summary>
    public TimeSpan HealthCheckInterval { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>How worker certificates are trusted (<c>Workers:Tls:CaBundlePath</c>, <c>Workers:Tls:ServerName</c>). Default: the system's store and each address's host.</summary>
    public TlsTrustOptions Tls { get; init; } = new();

    /// <summary>Payload sizes (bytes, both directions together) probed when a worker joins. Default 0 B … 1 MiB.</summary>
    public IReadOnlyList<int> ProbeSizes { get; init; } = [0, 65536, 262144, 524288, 1048576];

    /// <summary>Probes per size when a worker joins. Default 3.</summary>
    public int ProbeRepeats { get; init; } = 3;

    /// <summary>Checks the settings, naming each bad one.</summary>
    public IReadOnlyList<string> Validate()
    {
        var failures = new List<string>();
        if (Mode is not (WorkerModes.Resident or WorkerModes.Stateless))
        {
            failures.Add($"{SectionName}:Mode must be '{WorkerModes.Resident}' or '{WorkerModes.Stateless}', got '{Mode}'.");
        }

        if (DecoderPlacement is not (DecoderPlacements.Auto or DecoderPlacements.Local or DecoderPlacements.Workers))
        {
            failures.Add($"{SectionName}:DecoderPlacement must be '{DecoderPlacements.Auto}', '{DecoderPlacements.Local}' or '{DecoderPlacements.Workers}', got '{DecoderPlacement}'.");
        }

        foreach (var endpoint in Endpoints)
        {
            if (!Uri.TryCreate(endpoint, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps))
            {
                failures.Add($"{SectionName}:Endpoints: '{endpoint}' is not an http:// or https:// address.");
            }
            else if (Secret is { Length: > 0 } && PlaintextLink.IsRemote(endpoint))
            {
                failures.Add($"{SectionName}:Endpoints: {PlaintextLink.Refusal(endpoint, $"{SectionName}:Secret")}");
            }
        }

        if (!(MoveMargin >= 0 && MoveMargin <= 1))
        {
            failures.Add($"{SectionName}:MoveMargin must lie in [0, 1], got {MoveMargin}.");
        }

        if (CallTimeout <= TimeSpan.Zero)
        {
            failures.Add($"{SectionName}:CallTimeout must be positive, got {CallTimeout}.");
        }

        if (StepTimeout < TimeSpan.Zero)
        {
            failures.Add($"{SectionName}:StepTimeout must not be negative, got {StepTimeout}.");
        }

        if (MaxRetries < 0)
        {
            failures.Add($"{SectionName}:MaxRetries must not be negative, got {MaxRetries}.");
        }

        if (MaxConsecutiveFailures < 1)
        {
            failures.Add($"{SectionName}:MaxConsecutiveFailures must be at least 1, got {MaxConsecutiveFailures}.");
        }

        if (HealthCheckInterval <= TimeSpan.Zero)
        {
            failures.Add($"{SectionName}:HealthCheckInterval must be positive, got {HealthCheckInterval}.");
        }

        if (ProbeSizes.Any(s => s < 0) || ProbeSizes.Distinct().Count() < 2)
        {
            failures.Add($"{SectionName}:ProbeSizes needs at least two distinct non-negative sizes to fit a line, got [{string.Join(", ", ProbeSizes)}].");
        }

        if (ProbeRepeats < 1)
        {
            failures.Add($"{SectionName}:ProbeRepeats must be at least 1, got {ProbeRepeats}.");
        }

        failures.AddRange(Tls.Validate($"{SectionName}:Tls"));

        return failures;
    }
}

/// <summary>The ways remote workers hold node states.</summary>
internal static class WorkerModes
{
    /// <summary>Workers keep node states between calls; a step ships node handles, not tensors.</summary>
    public const string Resident = "resident";

    /// <summary>Every step ships its node's state to the worker and back.</summary>
    public const string Stateless = "stateless";
}

/// <summary>Where a pipeline's decoder may run (<see cref="WorkerOptions.DecoderPlacement"/>).</summary>
internal static class DecoderPlacements
{
    /// <summary>Per latent, wherever it finishes soonest: this process or a remote backend that serves the decoder.</summary>
    public const string Auto = "auto";

    /// <summary>This process only.</summary>
    public const string Local = "local";

    /// <summary>Only remote backends that serve the decoder: workers hosting the pipeline and <c>kserve</c> servers mapping its <c>vae_decoder</c>.</summary>
    public const string Workers = "workers";
}

/// <summary>The stages a search's link traffic is counted by (<see cref="Links.LinkUsage.Stage"/>).</summary>
internal static class StageNames
{
    /// <summary>A pipeline's tokenizer and text encoder.</summary>
    public const string TextEncoder = "text_encoder";

    /// <summary>The denoiser: steps, and putting, forking and fetching node states.</summary>
    public const string Denoiser = "denoiser";

    /// <summary>A pipeline's decoder.</summary>
    public const string Decoder = "decoder";

    /// <summary>Verifiers scoring resident nodes where they live.</summary>
    public const string Verifier = "verifier";
}
