namespace SearchOrchestrator.Processes;

/// <summary>
/// The condition of a masked model: token ids per position (the mask id where the model is to fill in) and the
/// positions that are clamped, never masked (a prompt, a puzzle's givens). A prompt shorter than the model's sequence
/// is padded with masks.
/// </summary>
public sealed record TokenPrompt
{
    /// <summary>Creates a prompt; <paramref name="clamped"/> null clamps every position that is not the mask id.</summary>
    public TokenPrompt(IReadOnlyList<int> tokens, IReadOnlyList<int>? clamped = null)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        Tokens = [.. tokens];
        Clamped = clamped is null ? null : [.. clamped];
    }

    /// <summary>Token ids, one per position from the start of the sequence.</summary>
    public IReadOnlyList<int> Tokens { get; }

    /// <summary>The clamped positions, or null for "every non-mask token of the prompt".</summary>
    public IReadOnlyList<int>? Clamped { get; }
}
