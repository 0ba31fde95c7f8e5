using SearchOrchestrator.Denoising;

namespace SearchOrchestrator.Scheduling;

/// <summary>The batcher of a pipeline's text encoder: prompts queued by any search are encoded together.</summary>
internal sealed class TextEncoderBatcher : IAsyncDisposable
{
    private readonly Pump _pump;

    /// <summary>Creates the batcher and starts its pump.</summary>
    public TextEncoderBatcher(ITextEncoder encoder, BatchingOptions options, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(encoder);
        ArgumentNullException.ThrowIfNull(options);
        _pump = new Pump(encoder, options, time ?? TimeProvider.System);
    }

    /// <summary>Encodes one prompt into <see cref="TextEncoderDescription.EmbeddingElements"/> floats.</summary>
    public async Task<float[]> EncodeAsync(string prompt, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        var work = new Work(prompt, cancellationToken);
        await _pump.SubmitAsync(work).ConfigureAwait(false);
        return work.Embedding!;
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync() => _pump.DisposeAsync();

    private sealed class Work(string prompt, CancellationToken cancellationToken) : BatchWork(1, cancellationToken)
    {
        public string Prompt { get; } = prompt;

        public float[]? Embedding { get; set; }
    }

    private sealed class Pump(ITextEncoder encoder, BatchingOptions options, TimeProvider time) : BatchPump<Work>(encoder.Description.Name + "/text_encoder", options, time)
    {
        public new Task<BatchTiming> SubmitAsync(Work work) => base.SubmitAsync(work);

        protected override async Task ExecuteAsync(IReadOnlyList<Work> batch, int lane, CancellationToken passCancellation)
        {
            var m = encoder.Description.EmbeddingElements;
            var embeddings = new float[batch.Count * m];
            await encoder.EncodeAsync([.. batch.Select(w => w.Prompt)], embeddings, passCancellation).ConfigureAwait(false);
            for (var i = 0; i < batch.Count; i++)
            {
                batch[i].Embedding = embeddings.AsSpan(i * m, m).ToArray();
            }
        }
    }
}

/// <summary>The batcher of a pipeline's decoder: latents queued by any search are decoded together.</summary>
internal sealed class DecoderBatcher : IAsyncDisposable
{
    private readonly Pump _pump;
    private long _lastBatch;

    /// <summary>Creates the batcher and starts its pump.</summary>
    public DecoderBatcher(ISampleDecoder decoder, BatchingOptions options, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(decoder);
        ArgumentNullException.ThrowIfNull(options);
        Description = decoder.Description;
        _pump = new Pump(decoder, options, time ?? TimeProvider.System);
    }

    /// <summary>The decoder's shapes.</summary>
    public DecoderDescription Description { get; }

    /// <summary>Measured decode pass time by latents, for placing a decode here or on a worker.</summary>
    public ComputeCostModel Compute { get; } = new(TimeSpan.FromMilliseconds(1), TimeSpan.FromMilliseconds(1));

    /// <summary>Decodes one latent (<see cref="DecoderDescription.LatentShape"/>) into an image (<see cref="DecoderDescription.ImageShape"/>).</summary>
    public async Task<(float[] Image, BatchTiming Timing)> DecodeAsync(ReadOnlyMemory<float> latent, CancellationToken cancellationToken = default)
    {
        if (latent.Length != Description.LatentShape.ElementCount)
        {
            throw new ArgumentException($"A latent of '{Description.Name}' has {Description.LatentShape.ElementCount} values, got {latent.Length}.", nameof(latent));
        }

        var work = new Work(latent, cancellationToken);
        var timing = await _pump.SubmitAsync(work).ConfigureAwait(false);
        // Batch ids only grow: record each pass once, from whichever of its items completes first.
        var last = Volatile.Read(ref _lastBatch);
        if (timing.BatchId > last && Interlocked.CompareExchange(ref _lastBatch, timing.BatchId, last) == last)
        {
            Compute.Record(timing.BatchRows, timing.Compute);
        }

        return (work.Image!, timing);
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync() => _pump.DisposeAsync();

    private sealed class Work(ReadOnlyMemory<float> latent, CancellationToken cancellationToken) : BatchWork(1, cancellationToken)
    {
        public ReadOnlyMemory<float> Latent { get; } = latent;

        public float[]? Image { get; set; }
    }

    private sealed class Pump(ISampleDecoder decoder, BatchingOptions options, TimeProvider time) : BatchPump<Work>(decoder.Description.Name + "/vae_decoder", options, time)
    {
        public new Task<BatchTiming> SubmitAsync(Work work) => base.SubmitAsync(work);

        protected override async Task ExecuteAsync(IReadOnlyList<Work> batch, int lane, CancellationToken passCancellation)
        {
            var latent = decoder.Description.LatentShape.ElementCount;
            var image = decoder.Description.ImageShape.ElementCount;
            var latents = new float[batch.Count * latent];
            for (var i = 0; i < batch.Count; i++)
            {
                batch[i].Latent.Span.CopyTo(latents.AsSpan(i * latent, latent));
            }

            var images = new float[batch.Count * image];
            await decoder.DecodeAsync(batch.Count, latents, images, passCancellation).ConfigureAwait(false);
            for (var i = 0; i < batch.Count; i++)
            {
                batch[i].Image = images.AsSpan(i * image, image).ToArray();
            }
        }
    }
}
