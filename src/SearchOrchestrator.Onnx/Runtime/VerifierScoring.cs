using SearchOrchestrator.Onnx.Manifests;

namespace SearchOrchestrator.Onnx.Runtime;

/// <summary>
/// How a verifier's output row becomes a score (one rule for ONNX and remote verifiers): the (log-)probability of the
/// class matching the sample's condition, the single output value, or minus the distance from the output vector to
/// the condition's target.
/// </summary>
public sealed class VerifierScoring
{
    private readonly string _verifier;
    private readonly string _rule;
    private readonly Dictionary<string, int> _classOf;
    private readonly Dictionary<string, float[]> _targets;

    /// <summary>The rule <paramref name="scoring"/> for the verifier <paramref name="verifier"/> (named in errors).</summary>
    public VerifierScoring(string verifier, ScoringSpec scoring)
    {
        ArgumentException.ThrowIfNullOrEmpty(verifier);
        ArgumentNullException.ThrowIfNull(scoring);
        _verifier = verifier;
        _rule = scoring.Rule ?? throw new ArgumentException("the scoring rule is missing.", nameof(scoring));
        _classOf = (scoring.Labels ?? []).Select((label, index) => (label, index)).ToDictionary(p => p.label, p => p.index, StringComparer.Ordinal);
        _targets = scoring.Targets is { } targets ? new Dictionary<string, float[]>(targets, StringComparer.Ordinal) : [];
    }

    /// <summary>Checks that every condition can be scored (a known class or target) before any work is spent on it.</summary>
    /// <exception cref="InvalidRequestException">A condition has no class or target.</exception>
    public void CheckConditions(IReadOnlyList<string> conditions)
    {
        ArgumentNullException.ThrowIfNull(conditions);
        foreach (var condition in conditions)
        {
            _ = Reference(condition);
        }
    }

    /// <summary>Why output rows of <paramref name="width"/> values cannot be scored by this rule, or null when they can.</summary>
    public string? WidthProblem(int width) => _rule switch
    {
        ManifestNames.ClassProbability or ManifestNames.ClassLogProbability when width != _classOf.Count => $"the rule {_rule} has {_classOf.Count} labels but the output has {width} values per sample",
        ManifestNames.NegativeDistance when _targets.Values.FirstOrDefault(t => t.Length != width) is { } target => $"the rule {_rule} has targets of {target.Length} values but the output has {width} per sample",
        _ when width < 1 => "the output has no values per sample",
        _ => null,
    };

    /// <summary>One score per row of <paramref name="outputs"/> (<paramref name="width"/> values each), in condition order.</summary>
    public float[] Score(ReadOnlySpan<float> outputs, int width, IReadOnlyList<string> conditions)
    {
        ArgumentNullException.ThrowIfNull(conditions);
        var scores = new float[conditions.Count];
        for (var i = 0; i < scores.Length; i++)
        {
            var reference = Reference(conditions[i]);
            var row = outputs.Slice(i * width, width);
            scores[i] = (float)(_rule switch
            {
                ManifestNames.ClassLogProbability => LogSoftmaxAt(row, reference.Class),
                ManifestNames.ClassProbability => Math.Exp(LogSoftmaxAt(row, reference.Class)),
                ManifestNames.Scalar => row[0],
                _ => -Distance(row, reference.Target!),
            });
        }

        return scores;
    }

    /// <summary>What a condition is scored against: its class, or its target vector; scalar rules ignore it.</summary>
    private (int Class, float[]? Target) Reference(string condition)
    {
        switch (_rule)
        {
            case ManifestNames.ClassProbability or ManifestNames.ClassLogProbability:
                return _classOf.TryGetValue(condition, out var index)
                    ? (index, null)
                    : throw new InvalidRequestException("condition", $"verifier '{_verifier}' scores the conditions {string.Join(", ", _classOf.Keys)}; it cannot score {CallerInput.Quote(condition)}.");
            case ManifestNames.NegativeDistance:
                return _targets.TryGetValue(condition, out var target)
                    ? (0, target)
                    : throw new InvalidRequestException("condition", $"verifier '{_verifier}' has targets for the conditions {string.Join(", ", _targets.Keys)}; it cannot score {CallerInput.Quote(condition)}.");
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
