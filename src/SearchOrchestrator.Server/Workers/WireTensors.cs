using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Google.Protobuf;

namespace SearchOrchestrator.Server.Workers;

/// <summary>float32 tensors as little-endian bytes on the wire, whatever this machine's byte order.</summary>
internal static class WireTensors
{
    public static ByteString ToBytes(ReadOnlySpan<float> values)
    {
        if (BitConverter.IsLittleEndian)
        {
            return ByteString.CopyFrom(MemoryMarshal.AsBytes(values));
        }

        var bytes = new byte[values.Length * sizeof(float)];
        for (var i = 0; i < values.Length; i++)
        {
            BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(i * sizeof(float)), values[i]);
        }

        return ByteString.CopyFrom(bytes);
    }

    /// <summary>The floats in <paramref name="bytes"/>, or null when the byte count is not a whole number of floats.</summary>
    public static float[]? ToFloats(ByteString bytes)
    {
        if (bytes.Length % sizeof(float) != 0)
        {
            return null;
        }

        var span = bytes.Span;
        if (BitConverter.IsLittleEndian)
        {
            return MemoryMarshal.Cast<byte, float>(span).ToArray();
        }

        var values = new float[span.Length / sizeof(float)];
        for (var i = 0; i < values.Length; i++)
        {
            values[i] = BinaryPrimitives.ReadSingleLittleEndian(span[(i * sizeof(float))..]);
        }

        return values;
    }

    /// <summary>Copies <paramref name="bytes"/> into <paramref name="destination"/>; false when sizes differ or a value is not finite.</summary>
    public static bool TryCopyFinite(ByteString bytes, float[] destination)
    {
        var values = ToFloats(bytes);
        if (values is null || values.Length != destination.Length || !AllFinite(values))
        {
            return false;
        }

        values.CopyTo(destination, 0);
        return true;
    }

    public static bool AllFinite(ReadOnlySpan<float> values)
    {
        foreach (var v in values)
        {
            if (!float.IsFinite(v))
            {
                return false;
            }
        }

        return true;
    }
}
