using SearchOrchestrator.Tensors;

namespace SearchOrchestrator.Denoising;

/// <summary>What a decoder maps: latents of <see cref="LatentShape"/> to images of <see cref="ImageShape"/>.</summary>
public sealed record DecoderDescription
{
    /// <summary>The pipeline's name in the repository.</summary>
    public required string Name { get; init; }

    /// <summary>One latent, as the denoiser produces it (before the scaling factor is undone).</summary>
    public required SampleShape LatentShape { get; init; }

    /// <summary>One decoded image, <c>[channels, height, width]</c>, values in about [−1, 1].</summary>
    public required SampleShape ImageShape { get; init; }

    /// <summary>The VAE's scaling factor: the denoiser works on latents × this, the decoder takes latents ÷ this.</summary>
    public required double ScalingFactor { get; init; }

    /// <summary>
    /// What a decoder's graph takes for <paramref name="count"/> latents: each ÷ <see cref="ScalingFactor"/>. Throws when
    /// <paramref name="latents"/> or <paramref name="images"/> is too short for them.
    /// </summary>
    public float[] LatentSamples(int count, ReadOnlySpan<float> latents, int images)
    {
        var latent = LatentShape.ElementCount;
        var image = ImageShape.ElementCount;
        if (count < 1 || latents.Length < count * latent || images < count * image)
        {
            throw new ArgumentException($"Decoding {count} latent(s) for '{Name}' needs {count * latent} latent values and room for {count * image} pixels.", nameof(count));
        }

        var scaled = new float[count * latent];
        var factor = (float)ScalingFactor;
        for (var i = 0; i < scaled.Length; i++)
        {
            scaled[i] = latents[i] / factor; // correctly rounded, as a vectorised division is
        }

        return scaled;
    }
}

/// <summary>
/// A pipeline's decoder (a VAE decoder): latents in, pixels out, undoing the scaling factor on the way in.
/// Implementations must be safe to call concurrently.
/// </summary>
public interface ISampleDecoder
{
    /// <summary>The shapes and scaling factor.</summary>
    DecoderDescription Description { get; }

    /// <summary>
    /// Decodes <paramref name="count"/> latents (<c>count × LatentShape.ElementCount</c> floats) in one forward pass into
    /// <c>count × ImageShape.ElementCount</c> floats in <paramref name="images"/>.
    /// </summary>
    Task DecodeAsync(int count, ReadOnlyMemory<float> latents, Memory<float> images, CancellationToken cancellationToken = default);
}
