using System.Runtime.InteropServices;
using Microsoft.ML.OnnxRuntime;
using SearchOrchestrator.Onnx.Repository;
using SearchOrchestrator.Tensors;
using SearchOrchestrator.Verifiers;

namespace SearchOrchestrator.Onnx.Runtime;

/// <summary>
/// A verifier served by one ONNX Runtime session: a classifier whose logits become a score by the manifest's
/// rule, the (log-)probability of the class that matches each sample's condition label.
/// </summary>
internal sealed class OnnxVerifier : IVerifier, IDisposable
{
    private readonly InferenceSession _session;
    private readonly SampleShape _shape;
    private readonly string[] _inputNames;
    private readonly string[] _outputNames;
    private readonly string _rule;
    private readonly string[] _labels;
    private readonly Dictionary<string, int> _classOf;

    public OnnxVerifier(string name, InferenceSession session, SampleShape shape, string sampleInput, string logitsOutput, string rule, string[] labels)
    {
        Name = name;
        _session = session;
        _shape = shape;
        _inputNames = [sampleInput];
        _outputNames = [logitsOutput];
        _rule = rule;
        _labels = labels;
        _classOf = labels.Select((label, index) => (label, index)).ToDictionary(p => p.label, p => p.index, StringComparer.Ordinal);
    }

    public string Name { get; }

    public Task<float[]> ScoreAsync(VerifierBatch batch, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(batch);
        cancellationToken.ThrowIfCancellationRequested();
        if (!batch.Shape.Equals(_shape))
        {
            throw new InvalidRequestException("verifiers", $"verifier '{Name}' scores samples of shape {_shape}, got {batch.Shape}.");
        }

        var classes = new int[batch.Count];
        for (var i = 0; i < batch.Count; i++)
        {
            if (!_classOf.TryGetValue(batch.Conditions[i], out classes[i]))
            {
                throw new InvalidRequestException("condition", $"verifier '{Name}' scores the conditions {string.Join(", ", _labels)}; it cannot score '{batch.Conditions[i]}'.");
            }
        }

        var n = batch.Count;
        var logits = new float[n * _labels.Length];
        using var sample = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, MemoryMarshal.AsMemory(batch.Samples[..(n * _shape.ElementCount)]), _shape.WithBatch(n));
        using var output = OrtValue.CreateTensorValueFromMemory(logits, [n, _labels.Length]);
        OnnxRun.Run(_session, _inputNames, [sample], _outputNames, [output], cancellationToken);

        var scores = new float[n];
        for (var i = 0; i < n; i++)
        {
            var row = logits.AsSpan(i * _labels.Length, _labels.Length);
            var logProbability = LogSoftmaxAt(row, classes[i]);
            scores[i] = (float)(_rule == ManifestNames.ClassLogProbability ? logProbability : Math.Exp(logProbability));
            if (!float.IsFinite(scores[i]))
            {
                throw new InvalidOperationException($"verifier '{Name}' produced a non-finite score for sample {i} (its logits hold NaN or infinity).");
            }
        }

        return Task.FromResult(scores);
    }

    public void Dispose() => _session.Dispose();

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
