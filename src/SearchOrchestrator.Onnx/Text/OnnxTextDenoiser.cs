using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using SearchOrchestrator.Denoising;
using SearchOrchestrator.Onnx.Pipelines;
using SearchOrchestrator.Onnx.Runtime;

namespace SearchOrchestrator.Onnx.Text;

/// <summary>
/// A diffusion LLM's <c>model.onnx</c>: <c>input_ids</c> (and, when the export has it, an all-ones
/// <c>attention_mask</c>, as LLaDA's own generate passes none) → <c>logits</c>, with no time input. Times and
/// conditions of the batch are not used: the prompt is in the tokens. A Dream-style model's logits at position i
/// predict token i + 1, so they are shifted one position back, as Dream's sampler does.
/// </summary>
internal sealed class OnnxTextDenoiser(InferenceSession session, DenoiserDescription description, TextModelTensors tensors) : IDenoiser, IDisposable
{
    public DenoiserDescription Description { get; } = description;

    public Task PredictAsync(DenoiserBatch batch, Memory<float> output, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(batch);
        cancellationToken.ThrowIfCancellationRequested();
        var n = batch.Count;
        var length = Description.SampleShape.ElementCount;
        var outputs = Description.OutputElements;
        if (n < 1 || batch.Samples.Length < n * length || output.Length < n * outputs)
        {
            throw new ArgumentException($"A batch of {n} for '{Description.Name}' needs {n * length} token ids and room for {n * outputs} logits.", nameof(batch));
        }

        var ids = new int[n * length];
        var samples = batch.Samples.Span;
        for (var k = 0; k < ids.Length; k++)
        {
            ids[k] = (int)samples[k];
        }

        var vocabulary = outputs / length;
        using var inputIds = StageTensors.Ids(ids, [n, length], tensors.IdsType);
        using var attention = tensors.AttentionMask ? StageTensors.Ids(Enumerable.Repeat(1, ids.Length).ToArray(), [n, length], tensors.IdsType) : null;
        using var logits = StageTensors.Output(output[..(n * outputs)], [n, length, vocabulary], tensors.LogitsType);
        OnnxRun.Run(session, tensors.InputNames, attention is null ? [inputIds] : [inputIds, attention], [TextModelLayout.Logits], [logits.Value], cancellationToken);
        logits.CopyOut();
        if (tensors.ShiftLogits)
        {
            var span = output.Span;
            for (var b = 0; b < n; b++)
            {
                var row = span.Slice(b * outputs, outputs);
                row[..(outputs - vocabulary)].CopyTo(row[vocabulary..]);
            }
        }

        return Task.CompletedTask;
    }

    public void Dispose() => session.Dispose();
}

/// <summary>The dtypes and inputs one text-model export uses, and whether its logits are shifted (Dream).</summary>
internal sealed record TextModelTensors(TensorElementType IdsType, bool AttentionMask, TensorElementType LogitsType, bool ShiftLogits)
{
    public string[] InputNames { get; } = AttentionMask ? [TextModelLayout.InputIds, TextModelLayout.AttentionMask] : [TextModelLayout.InputIds];
}
