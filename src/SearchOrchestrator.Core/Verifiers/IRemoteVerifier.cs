using SearchOrchestrator.Links;

namespace SearchOrchestrator.Verifiers;

/// <summary>
/// A verifier whose calls go over links to other processes (an Open Inference Protocol server, the pool's workers):
/// each batch reports what it moved, so every search counts its share per verifier, and the links' measured costs are
/// shown where the verifier is listed.
/// </summary>
internal interface IRemoteVerifier : IVerifier
{
    /// <summary>The links its calls go over now (one per endpoint), each with its measured cost.</summary>
    IReadOnlyList<LinkCostModel> Links { get; }

    /// <summary>One score per sample, in batch order, and what the call moved (bytes each way, time).</summary>
    Task<(float[] Scores, Transfer Transfer)> ScoreRemotelyAsync(VerifierBatch batch, CancellationToken cancellationToken = default);
}
