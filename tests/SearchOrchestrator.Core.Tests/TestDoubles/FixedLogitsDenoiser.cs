using SearchOrchestrator.Denoising;
using SearchOrchestrator.Processes;
using SearchOrchestrator.Tensors;

namespace SearchOrchestrator.Core.Tests.TestDoubles;

/// <summary>A masked denoiser with known logits: the same <c>[L, V]</c> table for every row, whatever its tokens.</summary>
internal sealed class FixedLogitsDenoiser : IDenoiser
{
    private readonly float[] _logits;
    private int _rows;

    public FixedLogitsDenoiser(float[,] logits, string name = "masked-fixed")
    {
        var (length, vocabulary) = (logits.GetLength(0), logits.GetLength(1));
        _logits = [.. logits.Cast<float>()];
        Description = new DenoiserDescription
        {
            Name = name,
            SampleShape = new SampleShape(length),
            Process = new MaskedProcess(length, vocabulary, maskId: 0, [.. Enumerable.Range(0, vocabulary).Select(v => v == 0 ? "." : ((char)('a' + v - 1)).ToString())]),
            Conditions = ConditionVocabulary.FreeText,
        };
    }

    public DenoiserDescription Description { get; }

    /// <summary>Rows evaluated so far (the NFE the denoiser actually saw).</summary>
    public int Rows => _rows;

    public Task PredictAsync(DenoiserBatch batch, Memory<float> output, CancellationToken cancellationToken = default)
    {
        Interlocked.Add(ref _rows, batch.Count);
        for (var i = 0; i < batch.Count; i++)
        {
            _logits.CopyTo(output.Span.Slice(i * _logits.Length, _logits.Length));
        }

        return Task.FromResult(0);
    }
}
