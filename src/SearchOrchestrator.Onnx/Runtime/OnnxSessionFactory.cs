using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Logging;
using Microsoft.ML.OnnxRuntime;

namespace SearchOrchestrator.Onnx.Runtime;

/// <summary>
/// Creates the sessions of each model (one per verifier, <see cref="Instances"/> per denoiser and its lone-pass
/// session), on the execution provider the options ask for, with intra-op threads set explicitly from the machine's
/// cores. The provider is chosen once: the requested GPU provider when its libraries load (the default build references
/// ONNX Runtime's CUDA package, whose CUDA and TensorRT providers need CUDA, cuDNN and TensorRT installed), otherwise
/// the next one down to CPU, and one log line says which and why.
/// </summary>
internal sealed partial class OnnxSessionFactory
{
    private readonly ModelRepositoryOptions _options;

    public OnnxSessionFactory(ModelRepositoryOptions options, ILogger logger)
    {
        _options = options;
        Provider = SelectProvider(options, logger);
        (Instances, IntraOpThreads, LonePassThreads) = options.Threading(Environment.ProcessorCount, gpu: Provider != ExecutionProviderNames.Cpu);
        OnnxLog.ThreadingSelected(logger, Instances, IntraOpThreads, LonePassThreads, Environment.ProcessorCount);
    }

    /// <summary>Sessions created per denoiser.</summary>
    public int Instances { get; }

    /// <summary>Intra-op threads of every session but the lone-pass one.</summary>
    public int IntraOpThreads { get; }

    /// <summary>Intra-op threads of each denoiser's lone-pass session; 0 when there is none.</summary>
    public int LonePassThreads { get; }

    /// <summary>The provider sessions run on: <c>cpu</c>, <c>cuda</c> or <c>tensorrt</c>.</summary>
    public string Provider { get; }

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
        Append(sessionOptions, Provider, _options.DeviceId);
        return new InferenceSession(modelPath, sessionOptions);
    }

    /// <summary>
    /// The first provider, in the order the request names them, that this build has and whose libraries load; CPU
    /// otherwise. Logs exactly one line: the choice, or the fallback with what each provider failed on.
    /// </summary>
    private static string SelectProvider(ModelRepositoryOptions options, ILogger logger)
    {
        var requested = options.ExecutionProvider;
        string[] candidates = requested switch
        {
            ExecutionProviderNames.TensorRt => [ExecutionProviderNames.TensorRt, ExecutionProviderNames.Cuda],
            ExecutionProviderNames.Cuda or ExecutionProviderNames.Auto => [ExecutionProviderNames.Cuda],
            _ => [],
        };
        var env = OrtEnv.Instance();
        var available = env.GetAvailableProviders();
        var failures = new List<string>();
        foreach (var provider in candidates)
        {
            if (!available.Contains(OrtName(provider)))
            {
                failures.Add($"{provider}: this build references the CPU-only Microsoft.ML.OnnxRuntime package (build with -p:OnnxRuntimePackage=gpu)");
                continue;
            }

            // Appending loads the provider's library and its CUDA / TensorRT dependencies: a missing one fails here. ONNX
            // Runtime would print its own error line for it; the one line logged below says it instead.
            var level = env.EnvLogLevel;
            env.EnvLogLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_FATAL;
            try
            {
                using var probe = new SessionOptions();
                Append(probe, provider, options.DeviceId);
                OnnxLog.ProviderSelected(logger, provider, requested);
                return provider;
            }
            catch (OnnxRuntimeException ex)
            {
                failures.Add($"{provider}: {MissingLibrary(provider) ?? ex.Message.Split('\n', 2)[0].Trim()}");
            }
            finally
            {
                env.EnvLogLevel = level;
            }
        }

        if (failures.Count == 0)
        {
            OnnxLog.ProviderSelected(logger, ExecutionProviderNames.Cpu, requested);
        }
        else if (requested == ExecutionProviderNames.Auto)
        {
            OnnxLog.GpuNotFound(logger, string.Join("; ", failures));
        }
        else
        {
            OnnxLog.ProviderFallback(logger, requested, string.Join("; ", failures));
        }

        return ExecutionProviderNames.Cpu;
    }

    private static void Append(SessionOptions sessionOptions, string provider, int deviceId)
    {
        if (provider == ExecutionProviderNames.TensorRt)
        {
            sessionOptions.AppendExecutionProvider_Tensorrt(deviceId);
        }

        if (provider is ExecutionProviderNames.TensorRt or ExecutionProviderNames.Cuda)
        {
            // After TensorRT, CUDA takes the nodes TensorRT does not; the CPU provider is always last.
            sessionOptions.AppendExecutionProvider_CUDA(deviceId);
        }
    }

    private static string OrtName(string provider) => provider == ExecutionProviderNames.TensorRt ? "TensorrtExecutionProvider" : "CUDAExecutionProvider";

    /// <summary>
    /// Why the provider's library does not load, as the dynamic loader says it (ONNX Runtime's exception only says that
    /// it failed): e.g. <c>libcublasLt.so.13: cannot open shared object file: No such file or directory</c>. Null when
    /// the library is not found beside ONNX Runtime's or loads (the failure was elsewhere, e.g. no device).
    /// </summary>
    internal static string? MissingLibrary(string provider)
    {
        var runtime = Process.GetCurrentProcess().Modules.Cast<ProcessModule>()
            .FirstOrDefault(m => Path.GetFileName(m.FileName) is "libonnxruntime.so" or "onnxruntime.dll" or "libonnxruntime.dylib");
        var name = OperatingSystem.IsWindows() ? $"onnxruntime_providers_{provider}.dll" : $"libonnxruntime_providers_{provider}.so";
        var path = runtime is null ? null : Path.Combine(Path.GetDirectoryName(runtime.FileName)!, name);
        if (path is null || !File.Exists(path))
        {
            return null;
        }

        try
        {
            NativeLibrary.Free(NativeLibrary.Load(path));
            return null;
        }
        catch (DllNotFoundException ex)
        {
            var missing = MissingDependency().Match(ex.Message);
            return missing.Success ? $"{missing.Value.Trim()} (needed by {name})" : $"{name} does not load: {ex.Message.Split('\n')[^1].Trim()}";
        }
    }

    [GeneratedRegex(@"[^\s:/]+: cannot open shared object file[^\r\n]*")]
    private static partial Regex MissingDependency();
}
