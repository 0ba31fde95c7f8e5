using Microsoft.Extensions.Options;
using SearchOrchestrator.Onnx.Manifests;
using SearchOrchestrator.Workers;

namespace SearchOrchestrator.Server.OpenInference;

/// <summary>
/// A verifier of kind <c>kserve</c>: a scoring model on an Open Inference Protocol server (Triton, KServe, a Python
/// server such as samples/PythonVerifier), configured as <c>Verifiers:Remote:n</c> and chosen by <see cref="Name"/>.
/// </summary>
public sealed class KServeVerifierOptions
{
    /// <summary>The name requests use to choose this verifier.</summary>
    public string Name { get; set; } = string.Empty;

    /// <summary>The server's gRPC address, <c>http://host:8001</c> or <c>https://host:8001</c>.</summary>
    public string Endpoint { get; set; } = string.Empty;

    /// <summary>The remote model's name; default <see cref="Name"/>.</summary>
    public string? Model { get; set; }

    /// <summary>The remote model's version; default empty (the server's choice).</summary>
    public string? Version { get; set; }

    /// <summary>The remote tensor names: what the sample and the condition are sent as, and the output scored.</summary>
    public KServeVerifierTensors Tensors { get; set; } = new();

    /// <summary>How the output row becomes a score, as for ONNX verifiers; default <c>scalar</c> (the single output value).</summary>
    public ScoringSpec Scoring { get; set; } = new() { Rule = ManifestNames.Scalar };

    /// <summary>The deadline of each <c>ModelInfer</c> call; default 30 s.</summary>
    public TimeSpan CallTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>The deadline of each readiness and metadata call made while joining; default 10 s.</summary>
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Sent as <c>x-api-key</c> on every call when set.</summary>
    public string? ApiKey { get; set; }

    /// <summary>How the server's certificate is trusted (<c>Tls:CaBundlePath</c>, <c>Tls:ServerName</c>).</summary>
    public TlsTrustOptions Tls { get; set; } = new();

    /// <summary>The remote model's name as sent: <see cref="Model"/>, or <see cref="Name"/> when that is not set.</summary>
    internal string RemoteName => Model ?? Name;

    /// <summary>The endpoint settings of the link to this verifier's server.</summary>
    internal KServeEndpointOptions ToEndpointOptions() => new()
    {
        Endpoint = Endpoint,
        CallTimeout = CallTimeout,
        ConnectTimeout = ConnectTimeout,
        ApiKey = ApiKey,
        Tls = Tls,
    };
}

/// <summary>The remote tensor names of a <c>kserve</c> verifier.</summary>
public sealed class KServeVerifierTensors
{
    /// <summary>The input the samples are sent as: FP32, shape [B, ...sample shape]. Default <c>sample</c>.</summary>
    public string Sample { get; set; } = "sample";

    /// <summary>The input the conditions (prompts) are sent as: BYTES, shape [B], UTF-8. Default <c>condition</c>.</summary>
    public string Condition { get; set; } = "condition";

    /// <summary>
    /// The input each sample's model time is sent as: FP32, shape [B], the time the sample's x0-prediction was made at
    /// (the schedule's time of its node's last step: a training timestep for gaussian models, the masked share for masked
    /// ones), for noise-aware verifiers. Default unset: no time is sent.
    /// </summary>
    public string? Time { get; set; }

    /// <summary>
    /// The input each sample's decoded text is sent as: BYTES, shape [B], UTF-8 (a text model's answer, laid out as the
    /// request's prompt laid it out), for verifiers that score text. Default unset: no text is sent; a search whose samples
    /// have no text (not a text model's) is refused when it is set.
    /// </summary>
    public string? Text { get; set; }

    /// <summary>The output scored: FP32, shape [B] or [B, width]. Default <c>score</c>.</summary>
    public string Output { get; set; } = "score";
}

/// <summary>Validates the <c>Verifiers:Remote</c> list, naming every bad setting.</summary>
public sealed class KServeVerifierOptionsValidator : IValidateOptions<VerifierPluginOptions>
{
    /// <inheritdoc />
    public ValidateOptionsResult Validate(string? name, VerifierPluginOptions options)
    {
        var failures = Check(options);
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    /// <summary>Every problem with the remote verifiers of <paramref name="options"/>, each naming its setting.</summary>
    public static IReadOnlyList<string> Check(VerifierPluginOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var failures = new List<string>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < options.Remote.Count; i++)
        {
            var prefix = $"{VerifierPluginOptions.SectionName}:Remote:{i}";
            var v = options.Remote[i];
            if (string.IsNullOrWhiteSpace(v.Name))
            {
                failures.Add($"{prefix}:Name: empty; requests choose the verifier by this name.");
            }
            else if (!names.Add(v.Name))
            {
                failures.Add($"{prefix}:Name: '{v.Name}' is used by an earlier {VerifierPluginOptions.SectionName}:Remote entry.");
            }

            if (!Uri.TryCreate(v.Endpoint, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps))
            {
                failures.Add($"{prefix}:Endpoint: '{v.Endpoint}' is not an http:// or https:// address (e.g. http://127.0.0.1:8001).");
            }
            else if (v.ApiKey is { Length: > 0 } && PlaintextLink.IsRemote(v.Endpoint))
            {
                failures.Add($"{prefix}:Endpoint: {PlaintextLink.Refusal(v.Endpoint, $"{prefix}:ApiKey")}");
            }

            if (v.Model is { } model && string.IsNullOrWhiteSpace(model))
            {
                failures.Add($"{prefix}:Model: empty; leave it out to use the Name.");
            }

            failures.AddRange(v.Tls.Validate($"{prefix}:Tls"));
            if (v.CallTimeout <= TimeSpan.Zero)
            {
                failures.Add($"{prefix}:CallTimeout: must be positive, got {v.CallTimeout}.");
            }

            if (v.ConnectTimeout <= TimeSpan.Zero)
            {
                failures.Add($"{prefix}:ConnectTimeout: must be positive, got {v.ConnectTimeout}.");
            }

            foreach (var (role, tensor) in new[] { ("Sample", v.Tensors.Sample), ("Condition", v.Tensors.Condition), ("Output", v.Tensors.Output) })
            {
                if (string.IsNullOrWhiteSpace(tensor))
                {
                    failures.Add($"{prefix}:Tensors:{role}: empty tensor name.");
                }
            }

            if (v.Tensors.Time is { } time && string.IsNullOrWhiteSpace(time))
            {
                failures.Add($"{prefix}:Tensors:Time: empty tensor name; leave it out to send no time.");
            }

            if (v.Tensors.Text is { } text && string.IsNullOrWhiteSpace(text))
            {
                failures.Add($"{prefix}:Tensors:Text: empty tensor name; leave it out to send no text.");
            }

            var inputs = new[] { v.Tensors.Sample, v.Tensors.Condition, v.Tensors.Time, v.Tensors.Text }.Where(t => !string.IsNullOrWhiteSpace(t)).ToList();
            if (inputs.Distinct(StringComparer.Ordinal).Count() != inputs.Count)
            {
                failures.Add($"{prefix}:Tensors: Sample, Condition, Time and Text must be different inputs, got {string.Join(", ", inputs.Select(t => $"'{t}'"))}.");
            }

            var rule = v.Scoring.Rule;
            if (rule is null || !ManifestNames.ScoringRules.Contains(rule))
            {
                failures.Add($"{prefix}:Scoring:Rule: '{rule}' is not a scoring rule; expected {string.Join(", ", ManifestNames.ScoringRules)}.");
            }
            else if (rule is ManifestNames.ClassProbability or ManifestNames.ClassLogProbability && v.Scoring.Labels is not { Length: > 0 })
            {
                failures.Add($"{prefix}:Scoring:Labels: the rule {rule} needs the condition label of each output value.");
            }
            else if (rule is ManifestNames.NegativeDistance && v.Scoring.Targets is not { Count: > 0 })
            {
                failures.Add($"{prefix}:Scoring:Targets: the rule {rule} needs a target vector per condition.");
            }
        }

        return failures;
    }
}
