using Microsoft.Extensions.Logging;
using Microsoft.ML.OnnxRuntime;
using SearchOrchestrator.Onnx.Repository;

namespace SearchOrchestrator.Onnx.Runtime;

/// <summary>
/// Creates the sessions of each model (one per verifier, <see cref="Instances"/> per denoiser), on the execution
/// provider the options ask for, with intra-op threads set explicitly from the machine's cores.
/// CUDA is tried only when this ONNX Runtime build has it; when it cannot load, sessions run on CPU and the
/// fallback is logged once.
/// </summary>
internal sealed class OnnxSessionFactory
{
    private const string CudaProvider = "CUDAExecutionProvider";
    private readonly ModelRepositoryOptions _options;
    private readonly ILogger _logger;
    private bool _useCuda;

    public OnnxSessionFactory(ModelRepositoryOptions options, ILogger logger)
    {
        _options = options;
        _logger = logger;
        var cudaBuiltIn = OrtEnv.Instance().GetAvailableProviders().Contains(CudaProvider);
        _useCuda = options.ExecutionProvider != ExecutionProviderNames.Cpu && cudaBuiltIn;
        Provider = _useCuda ? ExecutionProviderNames.Cuda : ExecutionProviderNames.Cpu;
        var reason = options.ExecutionProvider == ExecutionProviderNames.Cpu ? "as configured"
            : cudaBuiltIn ? "CUDA provider present"
            : "this build references the CPU-only Microsoft.ML.OnnxRuntime package; build with UseOnnxRuntimeGpu=true for CUDA";
        if (!cudaBuiltIn && options.ExecutionProvider == ExecutionProviderNames.Cuda)
        {
            OnnxLog.CudaUnavailable(logger, reason);
        }

        OnnxLog.ProviderSelected(logger, Provider, options.ExecutionProvider, reason);
        (Instances, IntraOpThreads, LonePassThreads) = options.Threading(Environment.ProcessorCount, _useCuda);
        OnnxLog.ThreadingSelected(logger, Instances, IntraOpThreads, LonePassThreads, Environment.ProcessorCount);
    }

    /// <summary>Sessions created per denoiser.</summary>
    public int Instances { get; }

    /// <summary>Intra-op threads of every session but the lone-pass one.</summary>
    public int IntraOpThreads { get; }

    /// <summary>Intra-op threads of each denoiser's lone-pass session; 0 when there is none.</summary>
    public int LonePassThreads { get; }

    /// <summary>The provider sessions actually run on: <c>cpu</c> or <c>cuda</c>.</summary>
    public string Provider { get; private set; }

    /// <summary>Opens a session of <paramref name="modelPath"/>; <paramref name="lonePass"/>: with <see cref="LonePassThreads"/>.</summary>
    public InferenceSession Create(string modelPath, bool lonePass = false)
    {
        using var sessionOptions = new SessionOptions
        {
            IntraOpNumThreads = lonePass ? LonePassThreads : IntraOpThreads,
            InterOpNumThreads = _options.InterOpThreads,
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
            LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR,
        };
        if (_useCuda)
        {
            try
            {
                sessionOptions.AppendExecutionProvider_CUDA(_options.DeviceId);
            }
            catch (OnnxRuntimeException ex)
            {
                // The provider is compiled in but its CUDA/cuDNN libraries or the device are missing.
                OnnxLog.CudaUnavailable(_logger, ex.Message);
                _useCuda = false;
                Provider = ExecutionProviderNames.Cpu;
            }
        }

        return new InferenceSession(modelPath, sessionOptions);
    }
}
