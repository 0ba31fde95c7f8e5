namespace SearchOrchestrator.Server.OpenInference;

/// <summary>
/// The Open Inference Protocol's tensor data types (<c>FP32</c>, <c>INT64</c> …) and the manifest's element types
/// (<c>float32</c>, <c>int64</c>) they correspond to.
/// </summary>
public static class OpenInferenceDatatypes
{
    /// <summary>32-bit IEEE float.</summary>
    public const string Fp32 = "FP32";

    /// <summary>Signed 64-bit integer.</summary>
    public const string Int64 = "INT64";

    private static readonly Dictionary<string, string> FromManifestDtype = new(StringComparer.Ordinal)
    {
        ["bool"] = "BOOL",
        ["uint8"] = "UINT8",
        ["uint16"] = "UINT16",
        ["uint32"] = "UINT32",
        ["uint64"] = "UINT64",
        ["int8"] = "INT8",
        ["int16"] = "INT16",
        ["int32"] = "INT32",
        ["int64"] = Int64,
        ["float16"] = "FP16",
        ["float32"] = Fp32,
        ["float64"] = "FP64",
        ["string"] = "BYTES",
    };

    /// <summary>The protocol's data type for a manifest element type (<c>float32</c> → <c>FP32</c>).</summary>
    /// <exception cref="ArgumentException">The element type has no protocol data type.</exception>
    public static string FromManifest(string dtype) =>
        dtype is not null && FromManifestDtype.TryGetValue(dtype, out var datatype)
            ? datatype
            : throw new ArgumentException($"the element type '{dtype}' has no Open Inference Protocol data type; expected one of {string.Join(", ", FromManifestDtype.Keys)}.", nameof(dtype));

    /// <summary>The model configuration's data type (Triton's <c>model_config.proto</c>) for a protocol data type.</summary>
    internal static Protos.Inference.DataType ToConfig(string datatype) => datatype switch
    {
        "BOOL" => Protos.Inference.DataType.TypeBool,
        "UINT8" => Protos.Inference.DataType.TypeUint8,
        "UINT16" => Protos.Inference.DataType.TypeUint16,
        "UINT32" => Protos.Inference.DataType.TypeUint32,
        "UINT64" => Protos.Inference.DataType.TypeUint64,
        "INT8" => Protos.Inference.DataType.TypeInt8,
        "INT16" => Protos.Inference.DataType.TypeInt16,
        "INT32" => Protos.Inference.DataType.TypeInt32,
        Int64 => Protos.Inference.DataType.TypeInt64,
        "FP16" => Protos.Inference.DataType.TypeFp16,
        Fp32 => Protos.Inference.DataType.TypeFp32,
        "FP64" => Protos.Inference.DataType.TypeFp64,
        "BYTES" => Protos.Inference.DataType.TypeString,
        _ => Protos.Inference.DataType.TypeInvalid,
    };

    /// <summary>Bytes per element of the data types this service moves as raw contents (FP32, INT64).</summary>
    internal static int ElementSize(string datatype) => datatype switch
    {
        Fp32 => sizeof(float),
        Int64 => sizeof(long),
        _ => throw new ArgumentException($"the data type '{datatype}' is not served; only {Fp32} and {Int64} are.", nameof(datatype)),
    };

    /// <summary>A shape as the protocol writes it: <c>[-1, 1, 24, 24]</c>.</summary>
    internal static string Format(IEnumerable<long> shape) => $"[{string.Join(", ", shape)}]";
}
