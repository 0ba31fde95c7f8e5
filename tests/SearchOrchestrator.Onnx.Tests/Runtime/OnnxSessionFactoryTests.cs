using System.Text.RegularExpressions;
using Microsoft.Extensions.Logging;
using Microsoft.ML.OnnxRuntime;
using SearchOrchestrator.Denoising;
using SearchOrchestrator.Onnx.Repository;
using SearchOrchestrator.Onnx.Runtime;

namespace SearchOrchestrator.Onnx.Tests.Runtime;

/// <summary>
/// Execution provider selection on this machine, which has ONNX Runtime's CUDA build (the default package) but no CUDA
/// libraries: asking for a GPU provider must start on CPU with one log line that names what is missing.
/// </summary>
public sealed class OnnxSessionFactoryTests
{
    // Event ids of OnnxLog's provider lines: selected, fallback, auto found no GPU.
    private static readonly int[] ProviderEvents = [1001, 1002, 1007];

    private static bool CudaBuild => OrtEnv.Instance().GetAvailableProviders().Contains("CUDAExecutionProvider");

    [Fact]
    public async Task Load_CudaAskedWithoutItsLibraries_RunsOnCpuAfterOneWarningNamingTheMissingLibrary()
    {
        using var models = new TemporaryRepository("counting");
        var logger = new Recording();

        using var repository = ModelRepository.Load(new ModelRepositoryOptions { Path = models.Path, ExecutionProvider = "cuda", WarmUp = false }, logger);

        var line = Assert.Single(logger.Entries, e => ProviderEvents.Contains(e.Id));
        Assert.Equal((1002, LogLevel.Warning), (line.Id, line.Level));
        Assert.StartsWith("Execution provider: cpu, falling back from cuda: cuda: ", line.Message);
        Assert.DoesNotContain('\n', line.Message);
        if (CudaBuild)
        {
            Assert.Matches(new Regex(@"cuda: lib\S+\.so[.\d]*: cannot open shared object file: No such file or directory \(needed by libonnxruntime_providers_cuda\.so\)$"), line.Message);
        }
        else
        {
            Assert.Contains("CPU-only Microsoft.ML.OnnxRuntime package", line.Message);
        }

        Assert.Equal("cpu", repository.ExecutionProvider);
        var counting = repository.GetDenoiser("counting");
        var output = new float[counting.Description.OutputElements];
        await counting.PredictAsync(new DenoiserBatch(1, new float[counting.Description.SampleShape.ElementCount], new float[] { 500 }, new long[] { 3 }), output);
        Assert.Contains(output, v => v != 0);
    }

    [Fact]
    public void Load_TensorRtAskedWithoutItsLibraries_FallsBackThroughCudaToCpuInOneLine()
    {
        using var models = new TemporaryRepository("counting");
        var logger = new Recording();

        using var repository = ModelRepository.Load(new ModelRepositoryOptions { Path = models.Path, ExecutionProvider = "tensorrt", WarmUp = false }, logger);

        var line = Assert.Single(logger.Entries, e => ProviderEvents.Contains(e.Id));
        Assert.Equal(1002, line.Id);
        Assert.Matches(new Regex("^Execution provider: cpu, falling back from tensorrt: tensorrt: .+; cuda: .+$"), line.Message);
        Assert.Equal("cpu", repository.ExecutionProvider);
        Assert.True(repository.Models.Single().IsReady);
    }

    [Fact]
    public void Load_AutoWithoutAGpu_SaysOnceAtInformationLevelThatItRunsOnCpu()
    {
        using var models = new TemporaryRepository("counting");
        var logger = new Recording();

        using var repository = ModelRepository.Load(new ModelRepositoryOptions { Path = models.Path, WarmUp = false }, logger);

        var line = Assert.Single(logger.Entries, e => ProviderEvents.Contains(e.Id));
        Assert.Equal((1007, LogLevel.Information), (line.Id, line.Level));
        Assert.StartsWith("Execution provider: cpu (requested auto; no GPU provider loads: cuda: ", line.Message);
        Assert.Equal("cpu", repository.ExecutionProvider);
    }

    [Fact]
    public void Load_CpuAsked_NeverTriesAGpuProvider()
    {
        using var models = new TemporaryRepository("counting");
        var logger = new Recording();

        using var repository = ModelRepository.Load(new ModelRepositoryOptions { Path = models.Path, ExecutionProvider = "cpu", WarmUp = false }, logger);

        var line = Assert.Single(logger.Entries, e => ProviderEvents.Contains(e.Id));
        Assert.Equal((1001, "Execution provider: cpu (requested cpu)"), (line.Id, line.Message));
    }

    private sealed class Recording : ILogger
    {
        private readonly List<(int Id, LogLevel Level, string Message)> _entries = [];

        public IReadOnlyList<(int Id, LogLevel Level, string Message)> Entries
        {
            get
            {
                lock (_entries)
                {
                    return [.. _entries];
                }
            }
        }

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            lock (_entries)
            {
                _entries.Add((eventId.Id, logLevel, formatter(state, exception)));
            }
        }
    }
}
