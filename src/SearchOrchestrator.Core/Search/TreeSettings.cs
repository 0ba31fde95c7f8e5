using SearchOrchestrator.Processes;
using SearchOrchestrator.Scheduling;
using SearchOrchestrator.Tensors;
using SearchOrchestrator.Verifiers;

namespace SearchOrchestrator.Search;

/// <summary>Everything a tree needs, assembled and validated by the engine.</summary>
internal sealed record TreeSettings
{
    /// <summary>Carries out the tree's decisions on node states.</summary>
    public required ITreeExecutor Executor { get; init; }

    /// <summary>The search's budget, cost account and events (shared with <see cref="Executor"/>).</summary>
    public required TreeLedger Ledger { get; init; }

    public required IReadOnlyList<VerifierBatcher> Verifiers { get; init; }

    public required VerifierEnsemble Ensemble { get; init; }

    /// <summary>Leave a failing remote verifier out of the ensemble for the rest of the search instead of failing it.</summary>
    public bool LeaveOutFailedVerifiers { get; init; }

    public required ISampler Sampler { get; init; }

    /// <summary>N, the number of sampling steps.</summary>
    public required int Steps { get; init; }

    /// <summary>The shape of one sample.</summary>
    public required SampleShape Shape { get; init; }

    /// <summary>The floats of one node state.</summary>
    public required int Elements { get; init; }

    public required string Condition { get; init; }

    public required ulong Seed { get; init; }

    public int ForkRenoiseSteps { get; init; } = 1;

    /// <summary>The request's preview steps j (1 = score raw x0-predictions); null when it sets none.</summary>
    public int? PreviewSteps { get; init; }

    /// <summary>Runs previews for lookahead scoring.</summary>
    public NodePreviews? Previews { get; init; }

    public Func<CancellationToken, Task<(ForkCalibrationResult Result, bool Ran)>>? CalibrateForkStep { get; init; }

    /// <summary>A pipeline's prompt embeddings, encoded before the first step and given back when the search is over.</summary>
    public PromptEmbeddingCache.PromptLease? Prompts { get; init; }

    /// <summary>A pipeline's decoder and, per verifier, whether it scores decoded images (else latents); null for other models.</summary>
    public TreeDecoding? Decoding { get; init; }
}

/// <summary>How a pipeline's tree gets pixels: its decoder, and which of its verifiers (in order) score decoded images.</summary>
internal sealed record TreeDecoding(PlacedDecoder Decoder, IReadOnlyList<bool> PixelVerifiers)
{
    /// <summary>True when some verifier scores decoded images.</summary>
    public bool AnyPixels => PixelVerifiers.Contains(true);
}
