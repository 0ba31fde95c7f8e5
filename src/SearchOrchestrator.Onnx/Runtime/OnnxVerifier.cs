using System.Runtime.InteropServices;
using Microsoft.ML.OnnxRuntime;
using SearchOrchestrator.Onnx.Manifests;
using SearchOrchestrator.Tensors;
using SearchOrchestrator.Verifiers;

namespace SearchOrchestrator.Onnx.Runtime;

/// <summary>
/// A verifier served by one ONNX Runtime session. Its output row becomes a score by the manifest's rule
/// (<see cref="VerifierScoring"/>). A noise-aware one (the manifest declares <c>inputs.time</c>) also takes each sample's
/// model time, FP32 [B].
/// </summary>
internal sealed class OnnxVerifier : IVerifier, IVerifierModel, IDisposable
{
    private readonly InferenceSession _session;
    private readonly SampleShape _shape;
    private readonly string[] _inputNames;
    private readonly string[] _outputNames;
    private readonly int _width;
    private readonly VerifierScoring _scoring;

    public OnnxVerifier(string name, InferenceSession session, SampleShape shape, string sampleInput, string output, int width, ScoringSpec scoring, string? timeInput = null)
    {
        Name = name;
        _session = session;
        _shape = shape;
        _inputNames = timeInput is null ? [sampleInput] : [sampleInput, timeInput];
        _outputNames = [output];
        _width = width;
        _scoring = new VerifierScoring(name, scoring);
    }

    public string Name { get; }

    public string Kind => VerifierKinds.Onnx;

    public SampleShape SampleShape => _shape;

    public int OutputWidth => _width;

    public Task RunAsync(ReadOnlyMemory<float> samples, int count, Memory<float> output, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        if (TakesTime)
        {
            throw new InvalidRequestException("verifiers", $"verifier '{Name}' takes each sample's time (input '{_inputNames[1]}'), which this call does not carry.");
        }

        if (count < 1 || samples.Length < count * _shape.ElementCount || output.Length < count * _width)
        {
            throw new ArgumentException($"A batch of {count} for '{Name}' needs {count * _shape.ElementCount} sample values and room for {count * _width} outputs.", nameof(count));
        }

        Run(samples, ReadOnlyMemory<float>.Empty, count, output, cancellationToken);
        return Task.CompletedTask;
    }

    private bool TakesTime => _inputNames.Length == 2;

    public Task<float[]> ScoreAsync(VerifierBatch batch, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(batch);
        cancellationToken.ThrowIfCancellationRequested();
        if (!batch.Shape.Equals(_shape))
        {
            throw new InvalidRequestException("verifiers", $"verifier '{Name}' scores samples of shape {_shape}, got {batch.Shape}.");
        }

        _scoring.CheckConditions(batch.Conditions);
        if (TakesTime && batch.Times.Length != batch.Count)
        {
            throw new InvalidRequestException("verifiers", $"verifier '{Name}' takes each sample's time (input '{_inputNames[1]}'), but these samples come without one (a worker relays samples without their times).");
        }

        var outputs = new float[batch.Count * _width];
        Run(batch.Samples, batch.Times, batch.Count, outputs, cancellationToken);
        var scores = _scoring.Score(outputs, _width, batch.Conditions);
        return Task.FromResult(scores);
    }

    public void Dispose() => _session.Dispose();

    private void Run(ReadOnlyMemory<float> samples, ReadOnlyMemory<float> times, int n, Memory<float> outputs, CancellationToken cancellationToken)
    {
        using var sample = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, MemoryMarshal.AsMemory(samples[..(n * _shape.ElementCount)]), _shape.WithBatch(n));
        using var time = TakesTime ? OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, MemoryMarshal.AsMemory(times[..n]), [n]) : null;
        using var output = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, outputs[..(n * _width)], [n, _width]);
        OnnxRun.Run(_session, _inputNames, time is null ? [sample] : [sample, time], _outputNames, [output], cancellationToken);
    }
}
