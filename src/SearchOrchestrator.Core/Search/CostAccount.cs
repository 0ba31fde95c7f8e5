namespace SearchOrchestrator.Search;

/// <summary>
/// What a search cost and what sharing saved. NFE is counted where it is spent, once per node per step however
/// many descendants share it; <see cref="NfeIndependent"/> is what running every leaf's path on its own would cost.
/// </summary>
public sealed record CostAccount
{
    /// <summary>Denoiser evaluations spent (a guided step counts once), previews included.</summary>
    public required long Nfe { get; init; }

    /// <summary>The part of <see cref="Nfe"/> spent on previews (lookahead scoring); also in <see cref="NfeIndependent"/>, since previews are never shared.</summary>
    public long PreviewNfe { get; init; }

    /// <summary>What independent runs of every leaf's whole path (returned and pruned) would have spent.</summary>
    public required long NfeIndependent { get; init; }

    /// <summary>1 − Nfe / NfeIndependent: the fraction of compute that sharing saved.</summary>
    public double Saving => NfeIndependent == 0 ? 0 : 1.0 - ((double)Nfe / NfeIndependent);

    /// <summary>Verifier calls (one per sample per verifier), calibration excluded.</summary>
    public required long VerifierCalls { get; init; }

    /// <summary>Prompts this search had the text encoder encode (a pipeline's; prompts found in the shared cache are hits).</summary>
    public long EncoderCalls { get; init; }

    /// <summary>Prompts this search found already encoded (or being encoded) in the shared prompt cache.</summary>
    public long EncoderCacheHits { get; init; }

    /// <summary>Latents this search had the decoder decode (a pipeline's: for pixel verifiers and the returned images).</summary>
    public long DecoderCalls { get; init; }

    /// <summary>NFE spent calibrating <c>fork_at: auto</c> (zero when the calibration was cached or not asked for).</summary>
    public long CalibrationNfe { get; init; }

    /// <summary>NFE spent recomputing nodes a failed worker held (deterministic replay); outside the budget.</summary>
    public long ReplayNfe { get; init; }

    /// <summary>What this search moved over each worker link, and the time spent moving it (empty when all ran here).</summary>
    public IReadOnlyList<Links.LinkUsage> Links { get; init; } = [];

    /// <summary>
    /// Each verifier of the search, in the request's order: its calls (they add up to <see cref="VerifierCalls"/>) and
    /// what scoring this search's samples moved over its link (zero for a verifier of this process).
    /// </summary>
    public IReadOnlyList<VerifierCost> Verifiers { get; init; } = [];

    /// <summary>Distinct denoiser batches this search's steps joined.</summary>
    public required int Batches { get; init; }

    /// <summary>Mean rows of those batches (all requests together).</summary>
    public required double MeanBatchSize { get; init; }

    /// <summary>Time this search's steps and verifications waited in queues, summed over items.</summary>
    public required TimeSpan QueueTime { get; init; }

    /// <summary>Time of the batches this search joined, each counted once.</summary>
    public required TimeSpan ComputeTime { get; init; }

    /// <summary>From the start of the search to its result.</summary>
    public required TimeSpan WallTime { get; init; }
}

/// <summary>
/// What one verifier cost one search: its calls (one per sample scored, failed ones included) and this search's share of
/// the bytes its remote calls moved each way and of their time (a call scoring several searches' samples is split by
/// samples, the shares adding up to the call).
/// </summary>
/// <param name="Name">The verifier's name.</param>
/// <param name="Kind">onnx, code, kserve or worker (<see cref="Verifiers.VerifierKinds"/>).</param>
/// <param name="Calls">Samples it was asked to score for this search.</param>
/// <param name="BytesSent">Request bytes sent to it for this search's samples.</param>
/// <param name="BytesReceived">Reply bytes received for them.</param>
/// <param name="TransferTime">Time of those calls (a remote call's elapsed time, shared by samples).</param>
public sealed record VerifierCost(string Name, string Kind, long Calls, long BytesSent, long BytesReceived, TimeSpan TransferTime);

/// <summary>A verifier that failed during a search whose request allowed leaving it out, and why.</summary>
/// <param name="Name">The verifier's name.</param>
/// <param name="Reason">Its error, naming the verifier (and the timeout, when its deadline passed).</param>
public sealed record LeftOutVerifier(string Name, string Reason);
