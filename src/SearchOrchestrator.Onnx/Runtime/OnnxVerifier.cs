using System.Runtime.InteropServices;
using Microsoft.ML.OnnxRuntime;
using SearchOrchestrator.Onnx.Repository;
using SearchOrchestrator.Tensors;
using SearchOrchestrator.Verifiers;

namespace SearchOrchestrator.Onnx.Runtime;

/// <summary>
/// A verifier served by one ONNX Runtime session. Its output row becomes a score by the manifest's rule: the
/// (log-)probability of the class matching the sample's condition, the single output value, or minus the distance
/// from the output vector to the condition's target.
/// </summary>
internal sealed class OnnxVerifier : IVerifier, IVerifierModel, IDisposable
{
    private readonly InferenceSession _session;
    private readonly SampleShape _shape;
    private readonly string[] _inputNames;
    private readonly string[] _outputNames;
    private readonly int _width;
    private readonly string _rule;
    private readonly Dictionary<string, int> _classOf;
    private readonly Dictionary<string, float[]> _targets;

    public OnnxVerifier(string name, InferenceSession session, SampleShape shape, string sampleInput, string output, int width, ScoringSpec scoring)
    {
        Name = name;
        _session = session;
        _shape = shape;
        _inputNames = [sampleInput];
        _outputNames = [output];
        _width = width;
        _rule = scoring.Rule!;
        _classOf = (scoring.Labels ?? []).Select((label, index) => (label, index)).ToDictionary(p => p.label, p => p.index, StringComparer.Ordinal);
        _targets = scoring.Targets is { } targets ? new Dictionary<string, float[]>(targets, StringComparer.Ordinal) : [];
    }

    public string Name { get; }

    public SampleShape SampleShape => _shape;

    public int OutputWidth => _width;

    public Task RunAsync(ReadOnlyMemory<float> samples, int count, Memory<float> output, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        if (count < 1 || samples.Length < count * _shape.ElementCount || output.Length < count * _width)
        {
            throw new ArgumentException($"A batch of {count} for '{Name}' needs {count * _shape.ElementCount} sample values and room for {count * _width} outputs.", nameof(count));
        }

        Run(samples, count, output, cancellationToken);
        return Task.CompletedTask;
    }

    public Task<float[]> ScoreAsync(VerifierBatch batch, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(batch);
        cancellationToken.ThrowIfCancellationRequested();
        if (!batch.Shape.Equals(_shape))
        {
            throw new InvalidRequestException("verifiers", $"verifier '{Name}' scores samples of shape {_shape}, got {batch.Shape}.");
        }

        var n = batch.Count;
        var references = batch.Conditions.Select(Reference).ToArray();
        var outputs = new float[n * _width];
        Run(batch.Samples, n, outputs, cancellationToken);

        var scores = new float[n];
        for (var i = 0; i < n; i++)
        {
            var row = outputs.AsSpan(i * _width, _width);
            scores[i] = (float)(_rule switch
            {
                ManifestNames.ClassLogProbability => LogSoftmaxAt(row, references[i].Class),
                ManifestNames.ClassProbability => Math.Exp(LogSoftmaxAt(row, references[i].Class)),
                ManifestNames.Scalar => row[0],
                _ => -Distance(row, references[i].Target!),
            });
        }

        return Task.FromResult(scores);
    }

    public void Dispose() => _session.Dispose();

    private void Run(ReadOnlyMemory<float> samples, int n, Memory<float> outputs, CancellationToken cancellationToken)
    {
        using var sample = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, MemoryMarshal.AsMemory(samples[..(n * _shape.ElementCount)]), _shape.WithBatch(n));
        using var output = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, outputs[..(n * _width)], [n, _width]);
        OnnxRun.Run(_session, _inputNames, [sample], _outputNames, [output], cancellationToken);
    }

    /// <summary>What a condition is scored against: its class, or its target vector; scalar rules ignore it.</summary>
    private (int Class, float[]? Target) Reference(string condition)
    {
        switch (_rule)
        {
            case ManifestNames.ClassProbability or ManifestNames.ClassLogProbability:
                return _classOf.TryGetValue(condition, out var index)
                    ? (index, null)
                    : throw new InvalidRequestException("condition", $"verifier '{Name}' scores the conditions {string.Join(", ", _classOf.Keys)}; it cannot score {CallerInput.Quote(condition)}.");
            case ManifestNames.NegativeDistance:
                return _targets.TryGetValue(condition, out var target)
                    ? (0, target)
                    : throw new InvalidRequestException("condition", $"verifier '{Name}' has targets for the conditions {string.Join(", ", _targets.Keys)}; it cannot score {CallerInput.Quote(condition)}.");
            default:
                return (0, null);
        }
    }

    private static double Distance(ReadOnlySpan<float> output, float[] target)
    {
        double sum = 0;
        for (var k = 0; k < output.Length; k++)
        {
            var d = output[k] - target[k];
            sum += d * d;
        }

        return Math.Sqrt(sum);
    }

    private static double LogSoftmaxAt(ReadOnlySpan<float> logits, int index)
    {
        double max = double.NegativeInfinity;
        foreach (var v in logits)
        {
            max = Math.Max(max, v);
        }

        double sum = 0;
        foreach (var v in logits)
        {
            sum += Math.Exp(v - max);
        }

        return logits[index] - max - Math.Log(sum);
    }
}
