using SearchOrchestrator.Denoising;
using SearchOrchestrator.Protos.Inference;
using SearchOrchestrator.Server.Internal;

namespace SearchOrchestrator.Server.OpenInference;

/// <summary>
/// A text-to-image pipeline's VAE decoder on an Open Inference Protocol server, as diffusers exports it:
/// <c>latent_sample</c> (the denoiser's latents ÷ the VAE scaling factor, divided here exactly as this process's own
/// decoder divides) → <c>sample</c>, FP32, in one <c>ModelInfer</c> per batch with a deadline. The reply is checked
/// (name, datatype, shape, byte count, finite values) and its bytes and time recorded on the endpoint's
/// <see cref="LinkTraffic"/>. Get one from <see cref="KServeEndpoint.ConnectDecoderAsync"/>, which has checked the remote
/// model's metadata.
/// </summary>
public sealed class KServeDecoder : ISampleDecoder
{
    private readonly KServeEndpoint _endpoint;
    private readonly string _what;

    internal KServeDecoder(KServeEndpoint endpoint, DecoderDescription description, RemoteStage remote)
    {
        _endpoint = endpoint;
        Remote = remote;
        Description = description;
        _what = $"{endpoint.Options.Endpoint}: the {KServeStages.VaeDecoder} of pipeline '{description.Name}' (remote '{remote.Name}')";
    }

    /// <inheritdoc />
    public DecoderDescription Description { get; }

    /// <summary>The stage as the server knows it.</summary>
    internal RemoteStage Remote { get; }

    /// <inheritdoc />
    /// <exception cref="KServeBackendException">The call failed or timed out, or the reply was malformed or not finite.</exception>
    public Task DecodeAsync(int count, ReadOnlyMemory<float> latents, Memory<float> images, CancellationToken cancellationToken = default) =>
        DecodeMeasuredAsync(count, latents, images, cancellationToken);

    /// <summary><see cref="DecodeAsync"/>, returning the call's traffic (also recorded on the endpoint's link).</summary>
    internal async Task<LinkTrafficSample> DecodeMeasuredAsync(int count, ReadOnlyMemory<float> latents, Memory<float> images, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var scaled = Description.LatentSamples(count, latents.Span, images.Length);
        var request = new ModelInferRequest { ModelName = Remote.Name, ModelVersion = Remote.Version };
        request.Inputs.Add(new ModelInferRequest.Types.InferInputTensor { Name = Remote.Input, Datatype = OpenInferenceDatatypes.Fp32, Shape = { Description.LatentShape.WithBatch(count) } });
        request.Outputs.Add(new ModelInferRequest.Types.InferRequestedOutputTensor { Name = Remote.Output });
        request.RawInputContents.Add(TensorCodec.Encode<float>(scaled));

        var (response, traffic) = await _endpoint.InferAsync(_what, request, cancellationToken).ConfigureAwait(false);

        var pixels = KServeReplies.ReadFp32(response, Remote.Output, Description.ImageShape.WithBatch(count), problem => new KServeBackendException($"{_what}: malformed ModelInfer reply: {problem}."));
        var bad = TensorCodec.FirstNonFinite(pixels);
        if (bad >= 0)
        {
            throw new KServeBackendException($"{_what}: ModelInfer returned {pixels[bad]} at element {bad} of output '{Remote.Output}'; pixels must be finite.");
        }

        pixels.CopyTo(images.Span);
        return traffic;
    }
}

/// <summary>A pipeline stage as the remote server knows it: model name, version, its input and output tensor names, its max_batch_size if it said.</summary>
internal sealed record RemoteStage(string Name, string Version, string Input, string Output, int? MaxBatchSize);
