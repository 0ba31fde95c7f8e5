using SearchOrchestrator.Denoising;

namespace SearchOrchestrator.Onnx.Pipelines;

/// <summary>
/// A text-to-image pipeline loaded from a folder in the diffusers ONNX layout: its stages as objects the engine drives —
/// the tokenizer and text encoder (<see cref="TextEncoder"/>), the latent denoiser (<see cref="Denoiser"/>, one
/// session per configured instance in <see cref="DenoiserInstances"/>) and the VAE decoder (<see cref="Decoder"/>),
/// each an ONNX Runtime session from the repository's session settings.
/// </summary>
public sealed class DiffusersPipeline : IDisposable
{
    private readonly IReadOnlyList<IDisposable> _owned;
    private readonly OnnxVaeDecoder _vae;

    internal DiffusersPipeline(string name, ClipTokenizer tokenizer, ITextEncoder textEncoder, IReadOnlyList<IPromptDenoiser> denoisers, OnnxVaeDecoder decoder, IReadOnlyList<PipelineStage> stages, IReadOnlyList<IDisposable> owned)
    {
        Name = name;
        Tokenizer = tokenizer;
        TextEncoder = textEncoder;
        DenoiserInstances = denoisers;
        Decoder = decoder;
        _vae = decoder;
        Stages = stages;
        _owned = owned;
    }

    /// <summary>The folder name, which is the pipeline's name.</summary>
    public string Name { get; }

    /// <summary>The CLIP tokenizer from <c>tokenizer/</c>.</summary>
    public ClipTokenizer Tokenizer { get; }

    /// <summary>Prompts → embeddings (<c>text_encoder/</c>); the empty prompt is guidance's unconditional branch.</summary>
    public ITextEncoder TextEncoder { get; }

    /// <summary>The latent denoiser (<c>unet/</c>), its process from <c>scheduler/scheduler_config.json</c>.</summary>
    public IPromptDenoiser Denoiser => DenoiserInstances[0];

    /// <summary>Every session of the latent denoiser (the repository's <c>Instances</c> setting).</summary>
    public IReadOnlyList<IPromptDenoiser> DenoiserInstances { get; }

    /// <summary>Latents → pixels (<c>vae_decoder/</c>), undoing the VAE's scaling factor.</summary>
    public ISampleDecoder Decoder { get; }

    /// <summary>
    /// Runs <c>vae_decoder/model.onnx</c> as exported, <c>latent_sample</c> (latents already ÷ the scaling factor) →
    /// <c>sample</c>: what an Open Inference Protocol client of the stage sends (<see cref="Decoder"/> divides first).
    /// </summary>
    public Task DecodeLatentSamplesAsync(int count, ReadOnlyMemory<float> latentSamples, Memory<float> images, CancellationToken cancellationToken = default) =>
        _vae.DecodeLatentSamplesAsync(count, latentSamples, images, cancellationToken);

    /// <summary>The stages with their tensors and dtypes, in pipeline order.</summary>
    public IReadOnlyList<PipelineStage> Stages { get; }

    /// <summary>Disposes every session.</summary>
    public void Dispose()
    {
        foreach (var owned in _owned)
        {
            owned.Dispose();
        }
    }
}
