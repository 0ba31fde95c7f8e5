using System.Runtime.InteropServices;
using Microsoft.ML.OnnxRuntime;
using SearchOrchestrator.Denoising;

namespace SearchOrchestrator.Onnx.Runtime;

/// <summary>
/// A denoiser served by one ONNX Runtime session. Inputs and the output are bound to the caller's memory
/// (no copies, except token ids, which a masked model takes as int64); a cancelled token terminates a running pass
/// through <see cref="RunOptions.Terminate"/>. A masked model has no condition input.
/// </summary>
internal sealed class OnnxDenoiser : IDenoiser, IDisposable
{
    private readonly InferenceSession _session;
    private readonly string[] _inputNames;
    private readonly string[] _outputNames;
    private readonly bool _tokenInput;

    public OnnxDenoiser(InferenceSession session, DenoiserDescription description, string sampleInput, string timeInput, string? conditionInput, string predictionOutput, bool tokenInput)
    {
        _session = session;
        Description = description;
        _inputNames = conditionInput is null ? [sampleInput, timeInput] : [sampleInput, timeInput, conditionInput];
        _outputNames = [predictionOutput];
        _tokenInput = tokenInput;
    }

    public DenoiserDescription Description { get; }

    public Task PredictAsync(DenoiserBatch batch, Memory<float> output, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(batch);
        cancellationToken.ThrowIfCancellationRequested();
        var n = batch.Count;
        var elements = Description.SampleShape.ElementCount;
        var outputs = Description.OutputElements;
        if (n < 1 || batch.Samples.Length < n * elements || batch.Times.Length < n || batch.Conditions.Length < n || output.Length < n * outputs)
        {
            throw new ArgumentException($"A batch of {n} for '{Description.Name}' needs {n * elements} sample values, {n} times, {n} conditions and room for {n * outputs} outputs.", nameof(batch));
        }

        var shape = Description.SampleShape.WithBatch(n);
        using var sample = _tokenInput
            ? OrtValue.CreateTensorValueFromMemory(Tokens(batch.Samples.Span[..(n * elements)]), shape)
            : OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, MemoryMarshal.AsMemory(batch.Samples[..(n * elements)]), shape);
        using var time = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, MemoryMarshal.AsMemory(batch.Times[..n]), [n]);
        using var condition = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, MemoryMarshal.AsMemory(batch.Conditions[..n]), [n]);
        long[] outputShape = _tokenInput ? [.. shape, Description.OutputElements / elements] : shape;
        using var prediction = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, output[..(n * outputs)], outputShape);
        OrtValue[] inputs = _inputNames.Length == 3 ? [sample, time, condition] : [sample, time];
        OnnxRun.Run(_session, _inputNames, inputs, _outputNames, [prediction], cancellationToken);
        return Task.CompletedTask;
    }

    public void Dispose() => _session.Dispose();

    private static long[] Tokens(ReadOnlySpan<float> values)
    {
        var tokens = new long[values.Length];
        for (var k = 0; k < values.Length; k++)
        {
            tokens[k] = (long)values[k];
        }

        return tokens;
    }
}

/// <summary>
/// Several sessions of one denoiser (<see cref="ModelRepositoryOptions.Instances"/>), each run by its own pump lane, and
/// the session with <see cref="ModelRepositoryOptions.LonePassThreads"/> that a pass running alone uses.
/// </summary>
internal sealed class OnnxDenoiserInstances(List<IDenoiser> instances) : IMultiInstanceDenoiser, IDisposable
{
    public IReadOnlyList<IDenoiser> Instances => instances;

    public IDenoiser? LonePass => LoneSession;

    public IDenoiser? LoneSession { get; set; }

    public DenoiserDescription Description => instances[0].Description;

    public Task PredictAsync(DenoiserBatch batch, Memory<float> output, CancellationToken cancellationToken = default) =>
        instances[0].PredictAsync(batch, output, cancellationToken);

    public void Dispose()
    {
        instances.ForEach(i => (i as IDisposable)?.Dispose());
        (LoneSession as IDisposable)?.Dispose();
    }
}

/// <summary>One cancellable <see cref="InferenceSession.Run(RunOptions, IReadOnlyCollection{string}, IReadOnlyCollection{OrtValue}, IReadOnlyCollection{string}, IReadOnlyCollection{OrtValue})"/>.</summary>
internal static class OnnxRun
{
    public static void Run(InferenceSession session, string[] inputNames, OrtValue[] inputs, string[] outputNames, OrtValue[] outputs, CancellationToken cancellationToken)
    {
        using var runOptions = new RunOptions();
        using var registration = cancellationToken.Register(static state => ((RunOptions)state!).Terminate = true, runOptions);
        try
        {
            session.Run(runOptions, inputNames, inputs, outputNames, outputs);
        }
        catch (OnnxRuntimeException) when (cancellationToken.IsCancellationRequested)
        {
            throw new OperationCanceledException("The forward pass was terminated because the request was cancelled.", cancellationToken);
        }
    }
}
