using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using SearchOrchestrator.Denoising;
using SearchOrchestrator.Onnx.Runtime;

namespace SearchOrchestrator.Onnx.Pipelines;

/// <summary>The tokenizer and <c>text_encoder/model.onnx</c>: prompts → <c>last_hidden_state</c>.</summary>
internal sealed class OnnxTextEncoder(InferenceSession session, ClipTokenizer tokenizer, TextEncoderDescription description, TensorElementType idsType, TensorElementType outputType) : ITextEncoder, IDisposable
{
    private static readonly string[] Inputs = [DiffusersLayout.InputIds];
    private static readonly string[] Outputs = [DiffusersLayout.LastHiddenState];

    public TextEncoderDescription Description { get; } = description;

    public ClipTokenizer Tokenizer { get; } = tokenizer;

    public int CountTokens(string prompt) => Tokenizer.CountTokens(prompt);

    public Task EncodeAsync(IReadOnlyList<string> prompts, Memory<float> embeddings, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(prompts);
        cancellationToken.ThrowIfCancellationRequested();
        var n = prompts.Count;
        var length = Description.SequenceLength;
        if (n < 1 || embeddings.Length < n * Description.EmbeddingElements)
        {
            throw new ArgumentException($"Encoding {n} prompt(s) for '{Description.Name}' needs at least one prompt and room for {n * Description.EmbeddingElements} floats.", nameof(prompts));
        }

        var ids = new int[n * length];
        for (var i = 0; i < n; i++)
        {
            Tokenizer.Encode(prompts[i]).CopyTo(ids, i * length);
        }

        using var input = StageTensors.Ids(ids, [n, length], idsType);
        using var output = StageTensors.Output(embeddings[..(n * Description.EmbeddingElements)], [n, length, Description.HiddenSize], outputType);
        OnnxRun.Run(session, Inputs, [input], Outputs, [output.Value], cancellationToken);
        output.CopyOut();
        return Task.CompletedTask;
    }

    public void Dispose() => session.Dispose();
}

/// <summary><c>unet/model.onnx</c>: (<c>sample</c>, <c>timestep</c>, <c>encoder_hidden_states</c>) → <c>out_sample</c>.</summary>
internal sealed class OnnxPromptDenoiser(InferenceSession session, DenoiserDescription description, TextEncoderDescription prompt, DiffusersLayout.UnetTypes types) : IPromptDenoiser, IDisposable
{
    private static readonly string[] Inputs = [DiffusersLayout.Sample, DiffusersLayout.Timestep, DiffusersLayout.EncoderHiddenStates];
    private static readonly string[] Outputs = [DiffusersLayout.OutSample];

    public DenoiserDescription Description { get; } = description;

    public TextEncoderDescription Prompt { get; } = prompt;

    public Task PredictAsync(PromptDenoiserBatch batch, Memory<float> output, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(batch);
        cancellationToken.ThrowIfCancellationRequested();
        var n = batch.Count;
        var elements = Description.SampleShape.ElementCount;
        if (n < 1 || batch.Samples.Length < n * elements || batch.Times.Length < n || batch.PromptEmbeddings.Length < n * Prompt.EmbeddingElements || output.Length < n * elements)
        {
            throw new ArgumentException($"A batch of {n} for '{Description.Name}' needs {n * elements} sample values, {n} times, {n * Prompt.EmbeddingElements} embedding values and room for {n * elements} outputs.", nameof(batch));
        }

        var shape = Description.SampleShape.WithBatch(n);
        using var sample = StageTensors.Input(batch.Samples[..(n * elements)], shape, types.Sample);
        using var time = StageTensors.Times(batch.Times[..n], [n], types.Timestep);
        using var states = StageTensors.Input(batch.PromptEmbeddings[..(n * Prompt.EmbeddingElements)], [n, Prompt.SequenceLength, Prompt.HiddenSize], types.EncoderHiddenStates);
        using var prediction = StageTensors.Output(output[..(n * elements)], shape, types.OutSample);
        OnnxRun.Run(session, Inputs, [sample, time, states], Outputs, [prediction.Value], cancellationToken);
        prediction.CopyOut();
        return Task.CompletedTask;
    }

    public void Dispose() => session.Dispose();
}

/// <summary><c>vae_decoder/model.onnx</c>: <c>latent_sample</c> (the denoiser's latents ÷ scaling factor) → <c>sample</c>.</summary>
internal sealed class OnnxVaeDecoder(InferenceSession session, DecoderDescription description, TensorElementType inputType, TensorElementType outputType) : ISampleDecoder, IDisposable
{
    private static readonly string[] Inputs = [DiffusersLayout.LatentSample];
    private static readonly string[] Outputs = [DiffusersLayout.Sample];

    public DecoderDescription Description { get; } = description;

    public Task DecodeAsync(int count, ReadOnlyMemory<float> latents, Memory<float> images, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        return DecodeLatentSamplesAsync(count, Description.LatentSamples(count, latents.Span, images.Length), images, cancellationToken);
    }

    /// <summary>Runs the graph as exported: <c>latent_sample</c> (latents already ÷ the scaling factor) → <c>sample</c>.</summary>
    public Task DecodeLatentSamplesAsync(int count, ReadOnlyMemory<float> latentSamples, Memory<float> images, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var latent = Description.LatentShape.ElementCount;
        var image = Description.ImageShape.ElementCount;
        if (count < 1 || latentSamples.Length < count * latent || images.Length < count * image)
        {
            throw new ArgumentException($"Decoding {count} latent sample(s) for '{Description.Name}' needs {count * latent} values and room for {count * image} pixels.", nameof(count));
        }

        using var input = StageTensors.Input(latentSamples[..(count * latent)], Description.LatentShape.WithBatch(count), inputType);
        using var output = StageTensors.Output(images[..(count * image)], Description.ImageShape.WithBatch(count), outputType);
        OnnxRun.Run(session, Inputs, [input], Outputs, [output.Value], cancellationToken);
        output.CopyOut();
        return Task.CompletedTask;
    }

    public void Dispose() => session.Dispose();
}
