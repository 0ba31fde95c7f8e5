namespace SearchOrchestrator.Denoising;

/// <summary>
/// One forward pass of a prompt-conditioned denoiser: <see cref="Count"/> samples stacked along axis 0, each with its own
/// model time and its own prompt embedding (<see cref="TextEncoderDescription.EmbeddingElements"/> floats each, from an
/// <see cref="ITextEncoder"/>).
/// </summary>
public sealed record PromptDenoiserBatch(int Count, ReadOnlyMemory<float> Samples, ReadOnlyMemory<float> Times, ReadOnlyMemory<float> PromptEmbeddings);

/// <summary>
/// A denoiser conditioned on prompt embeddings rather than a condition id (a Stable Diffusion U-Net, in latent space).
/// Its <see cref="DenoiserDescription.Conditions"/> is <see cref="ConditionVocabulary.FreeText"/>. Implementations must be
/// safe to call concurrently.
/// </summary>
public interface IPromptDenoiser
{
    /// <summary>The model: latent sample shape, process, <see cref="ConditionVocabulary.FreeText"/>.</summary>
    DenoiserDescription Description { get; }

    /// <summary>The embeddings it attends to (sequence length and hidden size), which its text encoder must produce.</summary>
    TextEncoderDescription Prompt { get; }

    /// <summary>
    /// Runs one forward pass over <c>batch.Count × SampleShape.ElementCount</c> sample values and writes
    /// <c>batch.Count × Description.OutputElements</c> floats to <paramref name="output"/>.
    /// </summary>
    Task PredictAsync(PromptDenoiserBatch batch, Memory<float> output, CancellationToken cancellationToken = default);
}
