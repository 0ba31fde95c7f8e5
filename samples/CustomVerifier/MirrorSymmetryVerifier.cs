using SearchOrchestrator.Verifiers;

namespace CustomVerifier;

/// <summary>
/// A verifier plug-in: scores how close an image is to its left-right mirror image, as −mean |x − mirror(x)|
/// (0 for a perfectly symmetric image, lower for less). It ignores the condition, so it combines with a
/// condition-aware verifier in an ensemble: "exactly n objects, and symmetric".
/// </summary>
public sealed class MirrorSymmetryVerifier : IVerifier
{
    public string Name => "mirror-symmetry";

    public Task<float[]> ScoreAsync(VerifierBatch batch, CancellationToken cancellationToken = default)
    {
        var dims = batch.Shape.Dimensions;
        var width = dims[^1];
        var rows = batch.Shape.ElementCount / width;
        var scores = new float[batch.Count];
        for (var i = 0; i < batch.Count; i++)
        {
            var image = batch.Sample(i);
            double difference = 0;
            for (var r = 0; r < rows; r++)
            {
                for (var x = 0; x < width / 2; x++)
                {
                    difference += Math.Abs(image[(r * width) + x] - image[(r * width) + width - 1 - x]);
                }
            }

            scores[i] = (float)(-difference / (rows * (width / 2)));
        }

        return Task.FromResult(scores);
    }
}
