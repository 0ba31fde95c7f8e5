using Grpc.Core;

namespace SearchOrchestrator.Server.OpenInference;

/// <summary>
/// An Open Inference Protocol backend could not be used or returned something unusable: not ready, metadata that does
/// not match our manifest, a failed or timed-out call, or a malformed reply. The message names the endpoint, the model
/// and what to fix.
/// </summary>
public sealed class KServeBackendException : Exception
{
    /// <summary>Creates the exception.</summary>
    public KServeBackendException(string message, StatusCode? status = null, Exception? innerException = null)
        : base(message, innerException)
    {
        Status = status;
    }

    /// <summary>The gRPC status of a failed call; null when the call succeeded but its content was refused.</summary>
    public StatusCode? Status { get; }

    /// <summary>True when the server answered that it, or the model, is not ready (yet): worth trying again later.</summary>
    public bool NotReady { get; init; }

    /// <summary>
    /// True when the server refused what we asked for (a model name or version it does not have, a batch larger than
    /// it takes): trying again does not help until the configuration changes. The message says what to change.
    /// </summary>
    public bool Refused { get; init; }
}
