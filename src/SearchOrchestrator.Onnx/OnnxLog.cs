using Microsoft.Extensions.Logging;

namespace SearchOrchestrator.Onnx;

/// <summary>Log messages of the model repository and its ONNX Runtime sessions.</summary>
internal static partial class OnnxLog
{
    [LoggerMessage(EventId = 1001, Level = LogLevel.Information, Message = "Execution provider: {Provider} (requested {Requested})")]
    public static partial void ProviderSelected(ILogger logger, string provider, string requested);

    [LoggerMessage(EventId = 1002, Level = LogLevel.Warning, Message = "Execution provider: cpu, falling back from {Requested}: {Reason}")]
    public static partial void ProviderFallback(ILogger logger, string requested, string reason);

    [LoggerMessage(EventId = 1007, Level = LogLevel.Information, Message = "Execution provider: cpu (requested auto; no GPU provider loads: {Reason})")]
    public static partial void GpuNotFound(ILogger logger, string reason);

    [LoggerMessage(EventId = 1003, Level = LogLevel.Information, Message = "Loaded {Kind} '{Model}' in {ElapsedMs} ms")]
    public static partial void ModelLoaded(ILogger logger, string kind, string model, long elapsedMs);

    [LoggerMessage(EventId = 1004, Level = LogLevel.Error, Message = "Model '{Model}' failed to load: {Error}")]
    public static partial void ModelFailed(ILogger logger, string model, string error);

    [LoggerMessage(EventId = 1006, Level = LogLevel.Information, Message = "Threading: {Instances} instance(s) per denoiser, {IntraOpThreads} intra-op thread(s) per session, {LonePassThreads} for a pass that runs alone (0: no lone-pass session), on {Cores} cores")]
    public static partial void ThreadingSelected(ILogger logger, int instances, int intraOpThreads, int lonePassThreads, int cores);

    [LoggerMessage(EventId = 1005, Level = LogLevel.Information, Message = "Model repository {Path}: {Ready} ready, {Failed} failed")]
    public static partial void RepositoryLoaded(ILogger logger, string path, int ready, int failed);
}
