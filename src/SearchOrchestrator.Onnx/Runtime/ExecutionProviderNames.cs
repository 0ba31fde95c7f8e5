namespace SearchOrchestrator.Onnx.Runtime;

/// <summary>The execution providers a model repository can be asked for.</summary>
public static class ExecutionProviderNames
{
    /// <summary>CUDA when its native library loads, otherwise CPU (the default).</summary>
    public const string Auto = "auto";

    /// <summary>ONNX Runtime's CPU provider.</summary>
    public const string Cpu = "cpu";

    /// <summary>NVIDIA CUDA; needs a build with <c>UseOnnxRuntimeGpu=true</c>, otherwise falls back to CPU with a warning.</summary>
    public const string Cuda = "cuda";

    /// <summary>Every accepted name.</summary>
    public static readonly IReadOnlyList<string> All = [Auto, Cpu, Cuda];
}
