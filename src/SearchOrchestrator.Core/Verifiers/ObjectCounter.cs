using SearchOrchestrator.Tensors;

namespace SearchOrchestrator.Verifiers;

/// <summary>
/// The programmatic counter: counts bright objects as 8-connected components of the pixels above
/// <see cref="Threshold"/>, ignoring specks smaller than <see cref="MinArea"/> pixels. As a verifier it scores
/// −|count − n| for condition n, so an exact count scores 0. It judges accuracy independently of any learned model.
/// </summary>
public sealed class ObjectCounter : IVerifier
{
    /// <summary>The registered name of this verifier.</summary>
    public const string VerifierName = "object-counter";

    /// <summary>Creates a counter for images in [-1, 1].</summary>
    /// <param name="threshold">Pixels above this value are foreground. Default 0 (mid-grey).</param>
    /// <param name="minArea">Components with fewer pixels are noise, not objects. Default 3.</param>
    public ObjectCounter(float threshold = 0f, int minArea = 3)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(minArea, 1);
        Threshold = threshold;
        MinArea = minArea;
    }

    /// <inheritdoc />
    public string Name => VerifierName;

    /// <summary>The foreground threshold.</summary>
    public float Threshold { get; }

    /// <summary>The smallest component that counts as an object.</summary>
    public int MinArea { get; }

    /// <summary>Counts the objects in one single-channel image of the given height and width.</summary>
    public int Count(ReadOnlySpan<float> image, int height, int width)
    {
        if (image.Length != height * width)
        {
            throw new ArgumentException($"An image of {height}x{width} has {height * width} pixels, got {image.Length}.", nameof(image));
        }

        var label = new int[image.Length];
        for (var p = 0; p < image.Length; p++)
        {
            label[p] = image[p] > Threshold ? 0 : -1;
        }

        return PixelComponents.Find(label, height, width).Count(component => component.Count >= MinArea);
    }

    /// <summary>Counts the objects in a <c>[1, H, W]</c> sample.</summary>
    public int Count(ReadOnlySpan<float> sample, SampleShape shape)
    {
        RequireSingleChannelImage(shape);
        return Count(sample, shape.Dimensions[1], shape.Dimensions[2]);
    }

    /// <inheritdoc />
    public Task<float[]> ScoreAsync(VerifierBatch batch, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(batch);
        RequireSingleChannelImage(batch.Shape);
        var scores = new float[batch.Count];
        for (var i = 0; i < batch.Count; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (!int.TryParse(batch.Conditions[i], out var wanted))
            {
                throw new InvalidRequestException("condition", $"verifier '{Name}' needs a whole-number condition (the object count), got {CallerInput.Quote(batch.Conditions[i])}.");
            }

            scores[i] = -Math.Abs(Count(batch.Sample(i), batch.Shape) - wanted);
        }

        return Task.FromResult(scores);
    }

    private void RequireSingleChannelImage(SampleShape shape)
    {
        if (shape.Dimensions.Count != 3 || shape.Dimensions[0] != 1)
        {
            throw new InvalidRequestException("verifiers", $"verifier '{Name}' counts objects in single-channel images [1, H, W]; this model's samples are [{string.Join(", ", shape.Dimensions)}].");
        }
    }
}
