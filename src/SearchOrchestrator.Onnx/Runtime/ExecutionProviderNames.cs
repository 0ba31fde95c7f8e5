namespace SearchOrchestrator.Onnx.Runtime;

/// <summary>The execution providers a model repository can be asked for (<c>Models:ExecutionProvider</c>).</summary>
public static class ExecutionProviderNames
{
    /// <summary>CUDA when its libraries load, otherwise CPU (the default).</summary>
    public const string Auto = "auto";

    /// <summary>ONNX Runtime's CPU provider.</summary>
    public const string Cpu = "cpu";

    /// <summary>NVIDIA CUDA; falls back to CPU, with one log line naming what failed to load.</summary>
    public const string Cuda = "cuda";

    /// <summary>NVIDIA TensorRT (opt-in; CUDA takes the nodes TensorRT cannot); falls back to CUDA, then CPU, with one log line.</summary>
    public const string TensorRt = "tensorrt";

    /// <summary>Every accepted name.</summary>
    public static readonly IReadOnlyList<string> All = [Auto, Cpu, Cuda, TensorRt];
}
