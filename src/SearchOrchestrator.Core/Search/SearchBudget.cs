namespace SearchOrchestrator.Search;

/// <summary>The most one search may spend. A strategy never exceeds it; when it runs out the search returns the best it has, marked budget-limited.</summary>
public sealed record SearchBudget
{
    /// <summary>Most denoiser evaluations (NFE); null for no limit.</summary>
    public long? MaxNfe { get; init; }

    /// <summary>Most verifier calls (one per sample per verifier); null for no limit.</summary>
    public long? MaxVerifierCalls { get; init; }

    /// <summary>
    /// Most decoder calls (one per latent decoded; a pipeline's): decoding for pixel verifiers stops here, and the
    /// returned candidates' images are held back from it first. Null for no limit.
    /// </summary>
    public long? MaxDecoderCalls { get; init; }

    /// <summary>Most wall time; no step or verification starts after it. Null for no limit.</summary>
    public TimeSpan? MaxWallTime { get; init; }

    /// <summary>Checks the values, throwing for the first bad one.</summary>
    public void Validate()
    {
        if (MaxNfe is < 1)
        {
            throw new InvalidRequestException("budget.max_nfe", $"budget.max_nfe must be at least 1 when set, got {MaxNfe}.");
        }

        if (MaxVerifierCalls is < 0)
        {
            throw new InvalidRequestException("budget.max_verifier_calls", $"budget.max_verifier_calls must not be negative, got {MaxVerifierCalls}.");
        }

        if (MaxDecoderCalls is < 0)
        {
            throw new InvalidRequestException("budget.max_decoder_calls", $"budget.max_decoder_calls must not be negative, got {MaxDecoderCalls}.");
        }

        if (MaxWallTime is { } wall && wall <= TimeSpan.Zero)
        {
            throw new InvalidRequestException("budget.max_wall_time", $"budget.max_wall_time must be positive when set, got {wall}.");
        }
    }
}
