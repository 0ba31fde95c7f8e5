namespace SearchOrchestrator.Verifiers;

/// <summary>How several verifiers' scores combine into one.</summary>
public enum EnsembleRule
{
    /// <summary>
    /// Each verifier ranks the nodes verified together; a node's score is its mean rank, scaled to [0, 1]
    /// (Ma et al., 2025). Scores compare only within one verification call.
    /// </summary>
    MeanRank,

    /// <summary>Σ weight × score, with the weights given per verifier (default 1).</summary>
    WeightedSum,
}

/// <summary>Combines the scores several verifiers gave the same nodes. One verifier's score passes through unchanged.</summary>
internal sealed class VerifierEnsemble
{
    private readonly IReadOnlyDictionary<string, double> _weights;

    /// <summary>Creates the ensemble for <paramref name="verifiers"/> (in order).</summary>
    public VerifierEnsemble(IReadOnlyList<string> verifiers, EnsembleRule rule = EnsembleRule.MeanRank, IReadOnlyDictionary<string, double>? weights = null)
    {
        ArgumentNullException.ThrowIfNull(verifiers);
        Verifiers = verifiers;
        Rule = rule;
        _weights = weights ?? new Dictionary<string, double>();
        foreach (var name in _weights.Keys.Where(n => !verifiers.Contains(n)))
        {
            throw new InvalidRequestException("verifier_weights", $"a weight is given for {CallerInput.Quote(name)}, which is not one of the request's verifiers ({CallerInput.QuoteList(verifiers)}).");
        }

        foreach (var (name, weight) in _weights.Where(p => !double.IsFinite(p.Value)))
        {
            throw new InvalidRequestException("verifier_weights", $"the weight of {CallerInput.Quote(name)} must be finite, got {weight}.");
        }
    }

    /// <summary>The verifier names, in order.</summary>
    public IReadOnlyList<string> Verifiers { get; }

    /// <summary>The combination rule.</summary>
    public EnsembleRule Rule { get; }

    /// <summary>Combines <c>scores[v][i]</c> (verifier v, node i) into one score per node.</summary>
    public double[] Combine(IReadOnlyList<float[]> scores) => Combine(scores, Verifiers);

    /// <summary>
    /// Combines the scores of <paramref name="verifiers"/> (some of the ensemble's, e.g. with a failed one left out),
    /// <c>scores[v][i]</c> being verifier v's score of node i, into one score per node.
    /// </summary>
    public double[] Combine(IReadOnlyList<float[]> scores, IReadOnlyList<string> verifiers)
    {
        ArgumentNullException.ThrowIfNull(scores);
        ArgumentNullException.ThrowIfNull(verifiers);
        var count = scores.Count == 0 ? 0 : scores[0].Length;
        var combined = new double[count];
        if (scores.Count == 1)
        {
            for (var i = 0; i < count; i++)
            {
                combined[i] = scores[0][i];
            }

            return combined;
        }

        for (var v = 0; v < scores.Count; v++)
        {
            if (Rule == EnsembleRule.WeightedSum)
            {
                var weight = _weights.GetValueOrDefault(verifiers[v], 1.0);
                for (var i = 0; i < count; i++)
                {
                    combined[i] += weight * scores[v][i];
                }
            }
            else
            {
                var ranks = Ranks(scores[v]);
                for (var i = 0; i < count; i++)
                {
                    combined[i] += ranks[i] / scores.Count;
                }
            }
        }

        return combined;
    }

    /// <summary>Ranks scaled to [0, 1] (best = 1); ties share their mean rank; a single node ranks 1.</summary>
    private static double[] Ranks(float[] values)
    {
        var n = values.Length;
        var ranks = new double[n];
        if (n == 1)
        {
            ranks[0] = 1;
            return ranks;
        }

        var order = Enumerable.Range(0, n).OrderBy(i => values[i]).ToArray();
        for (var start = 0; start < n;)
        {
            var end = start;
            while (end + 1 < n && values[order[end + 1]] == values[order[start]])
            {
                end++;
            }

            var rank = (start + end) / 2.0 / (n - 1);
            for (var k = start; k <= end; k++)
            {
                ranks[order[k]] = rank;
            }

            start = end + 1;
        }

        return ranks;
    }
}
