namespace SearchOrchestrator.Processes;

/// <summary>
/// A tokenizer as a text model's masked process needs it: text to token ids and back. Implementations must be safe
/// to call concurrently.
/// </summary>
internal interface ITextTokenizer
{
    /// <summary>The token ids of <paramref name="text"/>, no special tokens added (special tokens written in the text are kept as theirs).</summary>
    IReadOnlyList<int> Encode(string text);

    /// <summary>The text of <paramref name="ids"/>, special tokens (end of text, padding, the mask) left out.</summary>
    string Decode(IEnumerable<int> ids);
}

/// <summary>
/// How a text model (a diffusion LLM: LLaDA, Dream, MDLM) lays a prompt into its sequence of
/// <see cref="MaskedProcess.SequenceLength"/> positions: the prompt's tokens first (clamped), then the answer span of
/// masks the search fills, then padding (clamped) up to the sequence's end. Mask tokens written in the prompt are
/// filled too (infilling).
/// </summary>
/// <param name="Tokenizer">The model's tokenizer.</param>
/// <param name="AnswerLength">The answer span's length; null fills the rest of the sequence after the prompt.</param>
/// <param name="PadId">The id padding after the answer takes; needed when <paramref name="AnswerLength"/> is set.</param>
internal sealed record TextLayout(ITextTokenizer Tokenizer, int? AnswerLength, int? PadId);
