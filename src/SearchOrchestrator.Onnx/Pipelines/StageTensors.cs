using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace SearchOrchestrator.Onnx.Pipelines;

/// <summary>
/// Binds float32 memory to a stage's input or output whatever dtype the graph declares: float32 is bound in place;
/// float16 (fp16 exports) is converted at the boundary, so everything outside the session stays float32.
/// </summary>
internal static class StageTensors
{
    public static OrtValue Input(ReadOnlyMemory<float> values, long[] shape, TensorElementType type)
    {
        if (type == TensorElementType.Float)
        {
            return OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, MemoryMarshal.AsMemory(values), shape);
        }

        var half = new Float16[values.Length];
        TensorPrimitives.ConvertToHalf(values.Span, MemoryMarshal.Cast<Float16, Half>(half.AsSpan()));
        return OrtValue.CreateTensorValueFromMemory(half, shape);
    }

    /// <summary>An output bound to <paramref name="destination"/>; for float16, <see cref="BoundOutput.CopyOut"/> converts after the run.</summary>
    public static BoundOutput Output(Memory<float> destination, long[] shape, TensorElementType type)
    {
        if (type == TensorElementType.Float)
        {
            return new BoundOutput(OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, destination, shape), null, destination);
        }

        var half = new Float16[destination.Length];
        return new BoundOutput(OrtValue.CreateTensorValueFromMemory(half, shape), half, destination);
    }

    /// <summary>Token ids as the graph's integer type (int32 from diffusers' converter, int64 from Optimum).</summary>
    public static OrtValue Ids(ReadOnlySpan<int> ids, long[] shape, TensorElementType type) =>
        type == TensorElementType.Int64
            ? OrtValue.CreateTensorValueFromMemory(ToInt64(ids), shape)
            : OrtValue.CreateTensorValueFromMemory(ids.ToArray(), shape);

    /// <summary>Model times as the graph's timestep type: float32, float16 or an integer (Optimum exports int64).</summary>
    public static OrtValue Times(ReadOnlyMemory<float> times, long[] shape, TensorElementType type) => type switch
    {
        TensorElementType.Int64 => OrtValue.CreateTensorValueFromMemory(times.ToArray().Select(t => (long)Math.Round(t)).ToArray(), shape),
        TensorElementType.Int32 => OrtValue.CreateTensorValueFromMemory(times.ToArray().Select(t => (int)Math.Round(t)).ToArray(), shape),
        _ => Input(times, shape, type),
    };

    private static long[] ToInt64(ReadOnlySpan<int> ids)
    {
        var wide = new long[ids.Length];
        for (var i = 0; i < ids.Length; i++)
        {
            wide[i] = ids[i];
        }

        return wide;
    }

    /// <summary>A bound output and, for float16, the staging buffer to convert from.</summary>
    internal sealed class BoundOutput(OrtValue value, Float16[]? half, Memory<float> destination) : IDisposable
    {
        public OrtValue Value { get; } = value;

        public void CopyOut()
        {
            if (half is not null)
            {
                TensorPrimitives.ConvertToSingle(MemoryMarshal.Cast<Float16, Half>(half.AsSpan()), destination.Span);
            }
        }

        public void Dispose() => Value.Dispose();
    }
}
