namespace SearchOrchestrator.Tensors;

/// <summary>
/// The shape of one sample, without the batch axis: <c>[1, 24, 24]</c> for a 24×24 grayscale image.
/// Batches stack samples along a leading axis, so a batch of b samples holds b × <see cref="ElementCount"/> floats.
/// </summary>
public sealed class SampleShape : IEquatable<SampleShape>
{
    private readonly int[] _dimensions;

    /// <summary>Creates a shape from its dimensions, each at least 1.</summary>
    public SampleShape(params int[] dimensions)
    {
        ArgumentNullException.ThrowIfNull(dimensions);
        if (dimensions.Length == 0)
        {
            throw new ArgumentException("A sample shape needs at least one dimension.", nameof(dimensions));
        }

        long count = 1;
        foreach (var d in dimensions)
        {
            if (d < 1)
            {
                throw new ArgumentException($"Sample dimensions must be at least 1, got [{string.Join(", ", dimensions)}].", nameof(dimensions));
            }

            count *= d;
        }

        _dimensions = (int[])dimensions.Clone();
        ElementCount = checked((int)count);
    }

    /// <summary>The dimensions, outermost first.</summary>
    public IReadOnlyList<int> Dimensions => _dimensions;

    /// <summary>Number of floats in one sample.</summary>
    public int ElementCount { get; }

    /// <summary>True for <c>[channels, height, width]</c> with one (grayscale) or three (RGB) channels.</summary>
    public bool IsImage => _dimensions.Length == 3 && _dimensions[0] is 1 or 3;

    /// <summary>The shape of a batch of <paramref name="batchSize"/> such samples, as ONNX Runtime wants it.</summary>
    public long[] WithBatch(int batchSize)
    {
        var shape = new long[_dimensions.Length + 1];
        shape[0] = batchSize;
        for (var i = 0; i < _dimensions.Length; i++)
        {
            shape[i + 1] = _dimensions[i];
        }

        return shape;
    }

    /// <inheritdoc />
    public bool Equals(SampleShape? other) => other is not null && _dimensions.AsSpan().SequenceEqual(other._dimensions);

    /// <inheritdoc />
    public override bool Equals(object? obj) => Equals(obj as SampleShape);

    /// <inheritdoc />
    public override int GetHashCode()
    {
        var hash = new HashCode();
        foreach (var d in _dimensions)
        {
            hash.Add(d);
        }

        return hash.ToHashCode();
    }

    /// <summary>Formats as <c>1x24x24</c>.</summary>
    public override string ToString() => string.Join('x', _dimensions);
}
