namespace SearchOrchestrator.Denoising;

/// <summary>What a text encoder produces per prompt: <see cref="SequenceLength"/> × <see cref="HiddenSize"/> floats.</summary>
public sealed record TextEncoderDescription
{
    /// <summary>The pipeline's name in the repository.</summary>
    public required string Name { get; init; }

    /// <summary>Tokens per prompt after truncation and padding (77 for Stable Diffusion's CLIP).</summary>
    public required int SequenceLength { get; init; }

    /// <summary>Floats per token of the embedding (768 for SD 1.x, 1024 for SD 2.x).</summary>
    public required int HiddenSize { get; init; }

    /// <summary>Floats in one prompt's embedding.</summary>
    public int EmbeddingElements => SequenceLength * HiddenSize;
}

/// <summary>
/// A pipeline's tokenizer and text encoder as one stage: prompts in, the embeddings a latent denoiser attends to out.
/// The empty prompt <c>""</c> is the unconditional (negative) branch of classifier-free guidance.
/// Implementations must be safe to call concurrently.
/// </summary>
public interface ITextEncoder
{
    /// <summary>The shape of what this encoder produces.</summary>
    TextEncoderDescription Description { get; }

    /// <summary>
    /// The tokens of <paramref name="prompt"/> without the start and end markers, before truncation: a prompt of more than
    /// <see cref="TextEncoderDescription.SequenceLength"/> − 2 would be cut, so the engine refuses it.
    /// </summary>
    int CountTokens(string prompt);

    /// <summary>
    /// Encodes every prompt in one forward pass, writing <c>prompts.Count × Description.EmbeddingElements</c> floats to
    /// <paramref name="embeddings"/>, prompt after prompt.
    /// </summary>
    Task EncodeAsync(IReadOnlyList<string> prompts, Memory<float> embeddings, CancellationToken cancellationToken = default);
}
