using SearchOrchestrator.Scheduling;

namespace SearchOrchestrator.Workers;

/// <summary>
/// A backend the <see cref="WorkerPool"/> holds, of any kind: data (its kind, what it hosts, its health, queued rows,
/// link and compute models, through <see cref="IStepBackend"/>) plus its transport. The pool and placement see only
/// this; a new kind is an implementation and an <see cref="IBackendFactory"/> registered under its name.
/// </summary>
public interface IPooledBackend : IStepBackend, IAsyncDisposable
{
    /// <summary>The backend kind: one of <see cref="BackendKinds"/>, or the name a plug-in's factory registered.</summary>
    string Kind { get; }

    /// <summary>True when the backend runs <paramref name="model"/>.</summary>
    bool Hosts(string model);

    /// <summary>Asks the backend whether it is ready; a ready backend out of rotation comes back.</summary>
    Task<bool> CheckHealthAsync(CancellationToken cancellationToken = default);
}

/// <summary>
/// Connects backends of one kind, chosen by <see cref="Kind"/> (as YARP chooses policies by name). Register one per kind
/// (<c>AddBackendKind&lt;TFactory&gt;()</c>); the pool's membership joins an address through the factory of its kind.
/// </summary>
public interface IBackendFactory
{
    /// <summary>The kind this factory connects; unique among the registered factories.</summary>
    string Kind { get; }

    /// <summary>
    /// Connects the backend <paramref name="endpoint"/> names, checks it and measures its link, without adding it to the
    /// pool. Throws <see cref="WorkerRefusedException"/> when it must not join (joining again unchanged would fail the same
    /// way) and <see cref="WorkerUnavailableException"/> when it cannot be reached yet.
    /// </summary>
    Task<IPooledBackend> ConnectAsync(BackendEndpoint endpoint, CancellationToken cancellationToken = default);
}

/// <summary>
/// One backend to join: its kind, its address (also its name in the pool), and the kind's own settings where it has
/// any (e.g. a <c>kserve</c> server's model mapping).
/// </summary>
public sealed record BackendEndpoint(string Kind, string Address)
{
    /// <summary>Settings the kind's factory understands; null when it needs none.</summary>
    public object? Settings { get; init; }
}

/// <summary>
/// A pooled backend that decodes latents with pipelines' decoders (a <c>searchorch worker</c> serving the decoder stage,
/// an Open Inference Protocol server running a pipeline's VAE decoder). <see cref="Search.PlacedDecoder"/> places each
/// decode on one of these or here, by predicted time.
/// </summary>
public interface IDecoderBackend : IPooledBackend
{
    /// <summary>True when the backend serves <paramref name="stage"/> (<see cref="StageNames"/>) of the pipeline <paramref name="model"/>.</summary>
    bool ServesStage(string model, string stage);

    /// <summary>Measured time of the backend's decodes by latents, for placing decodes.</summary>
    ComputeCostModel DecoderCompute { get; }

    /// <summary>
    /// Decodes one latent (the denoiser's, before the scaling factor is undone) of pipeline <paramref name="model"/>;
    /// latents queued by every search meet in one call. Returns the image, the batch it joined and this latent's share of
    /// the call's traffic. Throws <see cref="WorkerUnavailableException"/> or <see cref="WorkerDataException"/> on failure.
    /// </summary>
    Task<(float[] Image, Scheduling.BatchTiming Timing, Links.Transfer Transfer)> DecodeAsync(string model, ReadOnlyMemory<float> latent, CancellationToken cancellationToken = default);
}
