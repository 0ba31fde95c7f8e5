using SearchOrchestrator.Denoising;

namespace SearchOrchestrator.Scheduling;

/// <summary>
/// A prompt-conditioned denoiser seen as an <see cref="IDenoiser"/>: each row's condition id is a handle of
/// <see cref="PromptEmbeddingCache"/>, whose embedding is gathered into the pass. So the step path (batching, every
/// strategy, forks, replay, determinism) runs a pipeline's latent denoiser unchanged; guidance's unconditional rows carry
/// the negative prompt's handle.
/// </summary>
internal sealed class EmbeddingDenoiser : IMultiInstanceDenoiser
{
    private readonly IPromptDenoiser _denoiser;
    private readonly PromptEmbeddingCache _prompts;

    public EmbeddingDenoiser(IReadOnlyList<IPromptDenoiser> instances, PromptEmbeddingCache prompts)
        : this(instances[0], prompts)
    {
        Instances = [this, .. instances.Skip(1).Select(d => new EmbeddingDenoiser(d, prompts))];
    }

    private EmbeddingDenoiser(IPromptDenoiser denoiser, PromptEmbeddingCache prompts)
    {
        _denoiser = denoiser;
        _prompts = prompts;
        Instances = [this];
    }

    public DenoiserDescription Description => _denoiser.Description;

    public IReadOnlyList<IDenoiser> Instances { get; }

    public Task PredictAsync(DenoiserBatch batch, Memory<float> output, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(batch);
        var m = _denoiser.Prompt.EmbeddingElements;
        var embeddings = new float[batch.Count * m];
        var handles = batch.Conditions.Span;
        for (var i = 0; i < batch.Count; i++)
        {
            _prompts.Embedding(handles[i]).CopyTo(embeddings, i * m);
        }

        return _denoiser.PredictAsync(new PromptDenoiserBatch(batch.Count, batch.Samples, batch.Times, embeddings), output, cancellationToken);
    }
}
