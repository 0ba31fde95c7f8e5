using System.Runtime.InteropServices;
using Microsoft.ML.OnnxRuntime;
using SearchOrchestrator.Denoising;

namespace SearchOrchestrator.Onnx.Runtime;

/// <summary>
/// A denoiser served by one ONNX Runtime session. Inputs and the output are bound to the caller's memory
/// (no copies); a cancelled token terminates a running pass through <see cref="RunOptions.Terminate"/>.
/// </summary>
internal sealed class OnnxDenoiser : IDenoiser, IDisposable
{
    private readonly InferenceSession _session;
    private readonly string[] _inputNames;
    private readonly string[] _outputNames;

    public OnnxDenoiser(InferenceSession session, DenoiserDescription description, string sampleInput, string timeInput, string conditionInput, string predictionOutput)
    {
        _session = session;
        Description = description;
        _inputNames = [sampleInput, timeInput, conditionInput];
        _outputNames = [predictionOutput];
    }

    public DenoiserDescription Description { get; }

    public Task PredictAsync(DenoiserBatch batch, Memory<float> output, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(batch);
        cancellationToken.ThrowIfCancellationRequested();
        var n = batch.Count;
        var elements = Description.SampleShape.ElementCount;
        if (n < 1 || batch.Samples.Length < n * elements || batch.Times.Length < n || batch.Conditions.Length < n || output.Length < n * elements)
        {
            throw new ArgumentException($"A batch of {n} for '{Description.Name}' needs {n * elements} sample values, {n} times, {n} conditions and room for {n * elements} outputs.", nameof(batch));
        }

        var shape = Description.SampleShape.WithBatch(n);
        using var sample = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, MemoryMarshal.AsMemory(batch.Samples[..(n * elements)]), shape);
        using var time = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, MemoryMarshal.AsMemory(batch.Times[..n]), [n]);
        using var condition = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, MemoryMarshal.AsMemory(batch.Conditions[..n]), [n]);
        using var prediction = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, output[..(n * elements)], shape);
        OnnxRun.Run(_session, _inputNames, [sample, time, condition], _outputNames, [prediction], cancellationToken);
        return Task.CompletedTask;
    }

    public void Dispose() => _session.Dispose();
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
