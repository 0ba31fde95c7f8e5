using SearchOrchestrator.Tensors;

namespace SearchOrchestrator.Onnx.Runtime;

/// <summary>
/// A verifier's raw tensor contract, before its scoring rule: samples in, one output row (logits, a scalar, a
/// vector) per sample out. Tensor protocols such as the Open Inference Protocol serve verifiers through it.
/// </summary>
public interface IVerifierModel
{
    /// <summary>The shape of one sample (no batch axis).</summary>
    SampleShape SampleShape { get; }

    /// <summary>The number of values in one output row.</summary>
    int OutputWidth { get; }

    /// <summary>
    /// Runs the model on <paramref name="count"/> samples and writes <c>count × OutputWidth</c> values to
    /// <paramref name="output"/>. Cancellation may stop a pass that is already running.
    /// </summary>
    Task RunAsync(ReadOnlyMemory<float> samples, int count, Memory<float> output, CancellationToken cancellationToken = default);
}
