using SearchOrchestrator.Randomness;

namespace SearchOrchestrator.Processes;

/// <summary>Where one node's step goes: from step index i (level <see cref="AlphaBarFrom"/>) to i + 1 (<see cref="AlphaBarTo"/>).</summary>
/// <param name="StepIndex">The step index i the node is at.</param>
/// <param name="AlphaBarFrom">The signal level at step i: ᾱ for gaussian, the share of unmasked positions α for masked.</param>
/// <param name="AlphaBarTo">The signal level at step i + 1.</param>
/// <param name="Key">The node's RNG key; every draw is a pure function of (key, step index).</param>
public readonly record struct SamplerStep(int StepIndex, double AlphaBarFrom, double AlphaBarTo, RngKey Key);

/// <summary>
/// The process seam: everything the trajectory tree and the batchers do to a state, for one request's sampler
/// settings. Built by <see cref="DiffusionProcess.CreateSampler(SamplerSettings, TokenPrompt?)"/> from plain data,
/// so a remote worker rebuilds the same update from <see cref="Settings"/>. States and x0-predictions are
/// <c>float[]</c> of <see cref="DiffusionProcess.StateElements"/> values. Implementations are immutable and thread-safe.
/// </summary>
public interface ISampler
{
    /// <summary>The settings this sampler was built from.</summary>
    SamplerSettings Settings { get; }

    /// <summary>True when steps draw randomness, so children forked from one node diverge without renoising.</summary>
    bool IsStochastic { get; }

    /// <summary>True when every root's prior is a fresh draw (gaussian noise); false when all roots start alike (a masked prompt).</summary>
    bool PriorIsRandom { get; }

    /// <summary>
    /// Applies one step: turns the denoiser's output for this node (<see cref="DiffusionProcess.OutputElements"/> values)
    /// into the next state (written over <paramref name="state"/>) and the x0-prediction made on the way.
    /// </summary>
    void Update(ReadOnlySpan<float> output, SamplerStep step, Span<float> state, Span<float> prediction);

    /// <summary>A root's state at step 0, drawn with the root's key.</summary>
    void Prior(RngKey key, Span<float> state);

    /// <summary>
    /// A root near another root's starting state, at <paramref name="similarity"/> in [0, 1] (zero-order search):
    /// <paramref name="state"/> holds a fresh prior on entry and the neighbour on return.
    /// </summary>
    void Neighbour(ReadOnlySpan<float> pivotPrior, double similarity, Span<float> state);

    /// <summary>
    /// renoise: moves <paramref name="state"/> at step <paramref name="fromStep"/> back to the earlier step
    /// <paramref name="toStep"/> with the child's key. <paramref name="forFork"/> marks a fork under a deterministic
    /// sampler, whose children must differ from each other.
    /// </summary>
    void Renoise(ReadOnlySpan<float> state, StepSchedule schedule, int fromStep, int toStep, RngKey key, bool forFork, Span<float> destination);
}
