using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Google.Protobuf;

namespace SearchOrchestrator.Server.Internal;

/// <summary>
/// The one tensor wire codec of every protocol this server speaks (the worker protocol, the Open Inference Protocol's
/// raw contents, a search candidate's tensor): elements little-endian and row-major, whatever this machine's byte order.
/// </summary>
internal static class TensorCodec
{
    /// <summary>The little-endian bytes of <paramref name="values"/>.</summary>
    public static ByteString Encode<T>(ReadOnlySpan<T> values)
        where T : unmanaged
    {
        var bytes = MemoryMarshal.AsBytes(values).ToArray();
        if (!BitConverter.IsLittleEndian)
        {
            ReverseEach(bytes, Unsafe.SizeOf<T>());
        }

        return UnsafeByteOperations.UnsafeWrap(bytes);
    }

    /// <summary>The values in little-endian <paramref name="bytes"/>, or null when the byte count is not a whole number of them.</summary>
    public static T[]? Decode<T>(ReadOnlySpan<byte> bytes)
        where T : unmanaged
    {
        var size = Unsafe.SizeOf<T>();
        if (bytes.Length % size != 0)
        {
            return null;
        }

        var values = MemoryMarshal.Cast<byte, T>(bytes).ToArray();
        if (!BitConverter.IsLittleEndian)
        {
            ReverseEach(MemoryMarshal.AsBytes(values.AsSpan()), size);
        }

        return values;
    }

    /// <summary>The float32 values of <paramref name="bytes"/>, or null when they are not a whole number of finite values.</summary>
    public static float[]? DecodeFinite(ByteString bytes) => Decode<float>(bytes.Span) is { } values && FirstNonFinite(values) < 0 ? values : null;

    /// <summary>The index of the first NaN or infinity, or -1.</summary>
    public static int FirstNonFinite(ReadOnlySpan<float> values)
    {
        for (var i = 0; i < values.Length; i++)
        {
            if (!float.IsFinite(values[i]))
            {
                return i;
            }
        }

        return -1;
    }

    private static void ReverseEach(Span<byte> bytes, int size)
    {
        for (var i = 0; i < bytes.Length; i += size)
        {
            bytes.Slice(i, size).Reverse();
        }
    }
}
