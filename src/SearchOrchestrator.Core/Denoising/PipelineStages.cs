namespace SearchOrchestrator.Denoising;

/// <summary>
/// The stages of a text-to-image pipeline as the engine drives them: the tokenizer and text encoder, the latent
/// denoiser (one entry per instance, each able to run a pass while the others run theirs) and the decoder.
/// </summary>
/// <param name="TextEncoder">Prompts → embeddings; encoded once per distinct prompt, cached across requests.</param>
/// <param name="Denoisers">The latent denoiser's instances, at least one, all describing the same model.</param>
/// <param name="Decoder">Latents → pixels, run only where pixels are needed.</param>
public sealed record PipelineStages(ITextEncoder TextEncoder, IReadOnlyList<IPromptDenoiser> Denoisers, ISampleDecoder Decoder)
{
    /// <summary>The latent denoiser's model (its first instance's description).</summary>
    public DenoiserDescription Description => Denoisers[0].Description;
}
