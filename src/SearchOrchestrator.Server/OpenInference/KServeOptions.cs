using Microsoft.Extensions.Options;

namespace SearchOrchestrator.Server.OpenInference;

/// <summary>
/// Servers of the Open Inference Protocol (KServe v2: Triton, OpenVINO Model Server, KServe runtimes, another
/// SearchOrchestrator) used as denoiser backends: configuration <c>Backends:KServe:n</c>.
/// </summary>
public sealed class KServeOptions
{
    /// <summary>The configuration section these options bind from; the endpoints are its <c>KServe</c> list.</summary>
    public const string SectionName = "Backends";

    /// <summary>The endpoints, <c>Backends:KServe:0</c>, <c>Backends:KServe:1</c> ….</summary>
    public IList<KServeEndpointOptions> KServe { get; init; } = [];
}

/// <summary>One Open Inference Protocol server and the models of ours it runs.</summary>
public sealed class KServeEndpointOptions
{
    /// <summary>The server's gRPC address, <c>http://host:8001</c> or <c>https://host:8001</c> (Triton's gRPC port is 8001).</summary>
    public string Endpoint { get; set; } = string.Empty;

    /// <summary>The deadline of each <c>ModelInfer</c> call; default 30 s.</summary>
    public TimeSpan CallTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>The deadline of each readiness and metadata call made while connecting; default 10 s.</summary>
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>The largest reply accepted, in bytes; default 64 MiB (gRPC's own default, 4 MiB, is one 64-row batch of 128×128×3 images).</summary>
    public int MaxReceiveMessageSize { get; set; } = 64 * 1024 * 1024;

    /// <summary>
    /// The most rows one <c>ModelInfer</c> carries (steps of every search are batched up to it; a guided step takes two
    /// rows); at most the server's own <c>max_batch_size</c>. Default 32.
    /// </summary>
    public int MaxBatchSize { get; set; } = 32;

    /// <summary>Sent as <c>x-api-key</c> on every call when set (a SearchOrchestrator server with <c>Auth:ApiKeys</c>, or a <c>searchorch worker</c> with <c>Worker:Secret</c>).</summary>
    public string? ApiKey { get; set; }

    /// <summary>How the server's certificate is trusted (<c>Tls:CaBundlePath</c>, <c>Tls:ServerName</c>). Default: the system's store and the address's host.</summary>
    public SearchOrchestrator.Workers.TlsTrustOptions Tls { get; set; } = new();

    /// <summary>
    /// Our model names (as in our repository) and how the server knows each: a denoiser by its name, a text-to-image
    /// pipeline's VAE decoder as <c>&lt;pipeline&gt;/vae_decoder</c> (<see cref="KServeStages"/>).
    /// </summary>
    public IDictionary<string, KServeModelOptions> Models { get; init; } = new Dictionary<string, KServeModelOptions>(StringComparer.Ordinal);

    /// <summary>A copy of these settings for the server at <paramref name="endpoint"/> (a discovered address).</summary>
    public KServeEndpointOptions WithEndpoint(string endpoint) => new()
    {
        Endpoint = endpoint,
        CallTimeout = CallTimeout,
        ConnectTimeout = ConnectTimeout,
        MaxReceiveMessageSize = MaxReceiveMessageSize,
        MaxBatchSize = MaxBatchSize,
        ApiKey = ApiKey,
        Tls = Tls,
        Models = Models,
    };
}

/// <summary>How a remote server knows one of our models: its name, version and tensor names.</summary>
public sealed class KServeModelOptions
{
    /// <summary>The tensor roles a denoiser mapping may name.</summary>
    public static readonly IReadOnlyList<string> Roles = ["sample", "time", "condition", "prediction"];

    /// <summary>The remote model's name; default our model's name.</summary>
    public string? RemoteName { get; set; }

    /// <summary>The remote model's version; default empty (the server's choice).</summary>
    public string? Version { get; set; }

    /// <summary>
    /// Remote tensor names by role (<c>sample</c>, <c>time</c>, <c>condition</c>, <c>prediction</c>; a pipeline's
    /// <c>vae_decoder</c>: <c>latent_sample</c>, <c>sample</c>); a role not listed uses our manifest's (the diffusers
    /// export's) tensor name.
    /// </summary>
    public IDictionary<string, string> Tensors { get; init; } = new Dictionary<string, string>(StringComparer.Ordinal);
}

/// <summary>
/// The pipeline stages an Open Inference Protocol server may run for us, by the name of their remote model: a pipeline's
/// stage is <c>&lt;pipeline&gt;/&lt;stage folder&gt;</c>, as our own server serves it (a repository model's name never
/// holds a '/').
/// </summary>
public static class KServeStages
{
    /// <summary>A pipeline's VAE decoder (<c>vae_decoder/model.onnx</c>: <c>latent_sample</c> → <c>sample</c>).</summary>
    public const string VaeDecoder = "vae_decoder";

    /// <summary>The tensor roles a <c>vae_decoder</c> mapping may name: the diffusers export's tensor names.</summary>
    public static readonly IReadOnlyList<string> DecoderRoles = ["latent_sample", "sample"];

    /// <summary>The model name of <paramref name="pipeline"/>'s <paramref name="stage"/>.</summary>
    public static string ModelName(string pipeline, string stage) => $"{pipeline}/{stage}";

    /// <summary>The pipeline and stage of a stage's model name; null for any other model name.</summary>
    public static (string Pipeline, string Stage)? Parse(string model)
    {
        ArgumentNullException.ThrowIfNull(model);
        var slash = model.IndexOf('/', StringComparison.Ordinal);
        return slash < 0 ? null : (model[..slash], model[(slash + 1)..]);
    }
}

/// <summary>Validates <see cref="KServeOptions"/>, naming every bad setting.</summary>
public sealed class KServeOptionsValidator : IValidateOptions<KServeOptions>
{
    /// <inheritdoc />
    public ValidateOptionsResult Validate(string? name, KServeOptions options)
    {
        var failures = Check(options);
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    /// <summary>Every problem with <paramref name="options"/>, each naming its setting.</summary>
    public static IReadOnlyList<string> Check(KServeOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var failures = new List<string>();
        for (var i = 0; i < options.KServe.Count; i++)
        {
            var prefix = $"{KServeOptions.SectionName}:KServe:{i}";
            var e = options.KServe[i];
            if (!Uri.TryCreate(e.Endpoint, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps))
            {
                failures.Add($"{prefix}:Endpoint: '{e.Endpoint}' is not an http:// or https:// address (e.g. http://triton:8001).");
            }
            else if (e.ApiKey is { Length: > 0 } && SearchOrchestrator.Workers.PlaintextLink.IsRemote(e.Endpoint))
            {
                failures.Add($"{prefix}:Endpoint: {SearchOrchestrator.Workers.PlaintextLink.Refusal(e.Endpoint, $"{prefix}:ApiKey")}");
            }

            failures.AddRange(e.Tls.Validate($"{prefix}:Tls"));
            if (e.CallTimeout <= TimeSpan.Zero)
            {
                failures.Add($"{prefix}:CallTimeout: must be positive, got {e.CallTimeout}.");
            }

            if (e.ConnectTimeout <= TimeSpan.Zero)
            {
                failures.Add($"{prefix}:ConnectTimeout: must be positive, got {e.ConnectTimeout}.");
            }

            if (e.MaxReceiveMessageSize < 1024)
            {
                failures.Add($"{prefix}:MaxReceiveMessageSize: must be at least 1024 bytes, got {e.MaxReceiveMessageSize}.");
            }

            if (e.MaxBatchSize < 2)
            {
                failures.Add($"{prefix}:MaxBatchSize: must be at least 2 (a guided step takes two rows), got {e.MaxBatchSize}.");
            }

            if (e.Models.Count == 0)
            {
                failures.Add($"{prefix}:Models: empty; map at least one of our models (Models:<name>:RemoteName …).");
            }

            foreach (var (model, m) in e.Models)
            {
                var stage = KServeStages.Parse(model);
                if (stage is { Stage: var name } && name != KServeStages.VaeDecoder)
                {
                    failures.Add($"{prefix}:Models:{model}: unknown stage '{name}'; a kserve server runs a pipeline's '{KServeStages.VaeDecoder}' (<pipeline>/{KServeStages.VaeDecoder}).");
                }

                var roles = stage is null ? KServeModelOptions.Roles : KServeStages.DecoderRoles;
                if (m.RemoteName is { } remote && string.IsNullOrWhiteSpace(remote))
                {
                    failures.Add($"{prefix}:Models:{model}:RemoteName: empty; leave it out to use '{model}'.");
                }

                foreach (var (role, tensor) in m.Tensors)
                {
                    if (!roles.Contains(role))
                    {
                        failures.Add($"{prefix}:Models:{model}:Tensors:{role}: unknown role; expected {string.Join(", ", roles)}.");
                    }
                    else if (string.IsNullOrWhiteSpace(tensor))
                    {
                        failures.Add($"{prefix}:Models:{model}:Tensors:{role}: empty tensor name.");
                    }
                }
            }
        }

        return failures;
    }
}
