using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace SearchOrchestrator.Server.Grpc;

/// <summary>The service's caps (configuration section <c>Serving</c>); a request over one is refused before it runs.</summary>
public sealed record ServingOptions
{
    /// <summary>The configuration section these options bind from.</summary>
    public const string SectionName = "Serving";

    /// <summary>Most sampling steps a request may ask for. Default 1000.</summary>
    public int MaxSteps { get; init; } = 1000;

    /// <summary>Most NFE one request may plan to spend (its strategy's plan, or its budget if lower). Default 20,000.</summary>
    public long MaxNfePerRequest { get; init; } = 20_000;

    /// <summary>Searches running at once; a call past it gets ResourceExhausted, never a queue without bound. Default 256.</summary>
    public int MaxConcurrentSearches { get; init; } = 256;

    /// <summary>Largest request message in bytes. Default 1 MiB.</summary>
    public int MaxReceiveMessageSize { get; init; } = 1 << 20;

    /// <summary>
    /// Largest response message in bytes. A search whose planned response (its candidates × the tensors, PNGs and
    /// tokens each carries) could exceed it is refused before it runs. Default 16 MiB.
    /// </summary>
    public int MaxSendMessageSize { get; init; } = 16 << 20;

    /// <summary>
    /// On shutdown the server stops accepting calls and lets running searches finish for this long, then cancels
    /// them. Default 30 s.
    /// </summary>
    public TimeSpan DrainTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>A PEM certificate for TLS (with <see cref="CertificateKeyPath"/>); https:// addresses need one.</summary>
    public string? CertificatePath { get; init; }

    /// <summary>The PEM private key of <see cref="CertificatePath"/>.</summary>
    public string? CertificateKeyPath { get; init; }

    /// <summary>Allow plaintext (http://) on addresses other than loopback. Default false: off loopback, use TLS.</summary>
    public bool AllowPlaintextRemote { get; init; }
}

/// <summary>Validates <see cref="ServingOptions"/>, naming every bad setting.</summary>
internal sealed class ServingOptionsValidator : IValidateOptions<ServingOptions>
{
    public ValidateOptionsResult Validate(string? name, ServingOptions options)
    {
        var failures = new List<string>();
        var section = ServingOptions.SectionName;
        if (options.MaxSteps < 1)
        {
            failures.Add($"{section}:MaxSteps must be at least 1, got {options.MaxSteps}.");
        }

        if (options.MaxNfePerRequest < 1)
        {
            failures.Add($"{section}:MaxNfePerRequest must be at least 1, got {options.MaxNfePerRequest}.");
        }

        if (options.MaxConcurrentSearches < 1)
        {
            failures.Add($"{section}:MaxConcurrentSearches must be at least 1, got {options.MaxConcurrentSearches}.");
        }

        if (options.DrainTimeout < TimeSpan.Zero)
        {
            failures.Add($"{section}:DrainTimeout must not be negative, got {options.DrainTimeout}.");
        }

        if (options.MaxReceiveMessageSize < 1024)
        {
            failures.Add($"{section}:MaxReceiveMessageSize must be at least 1024 bytes, got {options.MaxReceiveMessageSize}.");
        }

        if (options.MaxSendMessageSize < 64 * 1024)
        {
            failures.Add($"{section}:MaxSendMessageSize must be at least 65536 bytes, got {options.MaxSendMessageSize}.");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}

/// <summary>Log messages of the search service.</summary>
internal static partial class SearchServiceLog
{
    [LoggerMessage(EventId = 3001, Level = LogLevel.Information, Message = "Search {Strategy} on {Model} for '{Condition}': {Status}; nfe {Nfe} (independent {NfeIndependent}), verifier calls {VerifierCalls}, batches {Batches} of {MeanBatchSize:0.0} rows, wall {WallMs:0} ms")]
    public static partial void SearchFinished(ILogger logger, string strategy, string model, string condition, string status, long nfe, long nfeIndependent, long verifierCalls, int batches, double meanBatchSize, double wallMs);
}
