using System.Runtime.InteropServices;
using Microsoft.ML.OnnxRuntime;
using SearchOrchestrator.Onnx.Manifests;
using SearchOrchestrator.Onnx.Runtime;
using SearchOrchestrator.Tensors;
using SearchOrchestrator.Verifiers;

namespace SearchOrchestrator.Onnx.Pipelines;

/// <summary>
/// A verifier served by one ONNX Runtime session that reads the prompt beside the sample: each sample's condition (the
/// prompt it was generated for) is tokenized with the manifest's tokenizer into int64 ids <c>[n, length]</c>, and the
/// output row becomes a score by the manifest's rule (<see cref="VerifierScoring"/>). It is not an
/// <see cref="IVerifierModel"/>: its tensor contract needs prompts, which that samples-only contract cannot carry.
/// </summary>
internal sealed class OnnxPromptVerifier : IVerifier, IDisposable
{
    private readonly InferenceSession _session;
    private readonly ClipTokenizer _tokenizer;
    private readonly SampleShape _shape;
    private readonly string[] _inputNames;
    private readonly string[] _outputNames;
    private readonly int _width;
    private readonly VerifierScoring _scoring;

    public OnnxPromptVerifier(string name, InferenceSession session, ClipTokenizer tokenizer, SampleShape shape, string sampleInput, string promptInput, string output, int width, ScoringSpec scoring)
    {
        Name = name;
        _session = session;
        _tokenizer = tokenizer;
        _shape = shape;
        _inputNames = [sampleInput, promptInput];
        _outputNames = [output];
        _width = width;
        _scoring = new VerifierScoring(name, scoring);
    }

    public string Name { get; }

    public string Kind => VerifierKinds.Onnx;

    public SampleShape SampleShape => _shape;

    public Task<float[]> ScoreAsync(VerifierBatch batch, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(batch);
        cancellationToken.ThrowIfCancellationRequested();
        if (!batch.Shape.Equals(_shape))
        {
            throw new InvalidRequestException("verifiers", $"verifier '{Name}' scores samples of shape {_shape}, got {batch.Shape}.");
        }

        _scoring.CheckConditions(batch.Conditions);
        var n = batch.Count;
        var length = _tokenizer.MaxLength;
        var ids = new long[n * length];
        for (var i = 0; i < n; i++)
        {
            var tokens = _tokenizer.Encode(batch.Conditions[i]);
            for (var k = 0; k < length; k++)
            {
                ids[(i * length) + k] = tokens[k];
            }
        }

        var outputs = new float[n * _width];
        using var sample = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, MemoryMarshal.AsMemory(batch.Samples[..(n * _shape.ElementCount)]), _shape.WithBatch(n));
        using var prompt = OrtValue.CreateTensorValueFromMemory(ids, [n, length]);
        using var output = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, outputs.AsMemory(), [n, _width]);
        OnnxRun.Run(_session, _inputNames, [sample, prompt], _outputNames, [output], cancellationToken);
        return Task.FromResult(_scoring.Score(outputs, _width, batch.Conditions));
    }

    public void Dispose() => _session.Dispose();
}
