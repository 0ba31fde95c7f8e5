using SearchOrchestrator.Randomness;

namespace SearchOrchestrator.Processes;

/// <summary>
/// The masked process's sampler. A step draws a token for every masked position from the logits (most likely at
/// temperature 0, otherwise from softmax(logits / T) restricted to the top-k and to the top-p nucleus; the mask id is
/// never drawn), then lets the unmasking policy choose which of them to reveal: the schedule reveals
/// m − ⌊m·(1 − α_{i+1})/(1 − α_i)⌋ of the m masked positions (all at the last step). Unmasked tokens never change, so
/// clamped positions stay as the prompt set them. The x0-prediction fills every still-masked position with its most
/// likely token. Renoise re-masks unclamped positions until the share of masked ones matches the earlier step.
/// </summary>
internal sealed class MaskedSampler(
    MaskedProcess process, SamplerSettings settings, IUnmaskingPolicy policy, double temperature, int topK, double topP, bool randomRemask, int[] promptTokens, bool[] clamped)
    : ISampler
{
    private readonly int _length = process.SequenceLength;
    private readonly int _vocabulary = process.VocabularySize;
    private readonly int _mask = process.MaskId;
    private readonly int _maskable = clamped.Count(c => !c);

    public SamplerSettings Settings { get; } = settings;

    public bool IsStochastic => temperature > 0 || policy.Name == UnmaskingPolicyNames.Random;

    public bool PriorIsRandom => false;

    public void Update(ReadOnlySpan<float> output, SamplerStep step, Span<float> state, Span<float> prediction)
    {
        var tokens = state[.._length];
        var confidence = state[_length..(2 * _length)];
        var masked = new List<int>();
        for (var p = 0; p < _length; p++)
        {
            if ((int)tokens[p] == _mask)
            {
                masked.Add(p);
            }
        }

        var uniforms = new double[temperature > 0 ? masked.Count : 0];
        step.Key.FillUniform(NoiseUse.Step, step.StepIndex, uniforms);
        var drawn = new int[masked.Count];
        var drawnConfidence = new float[masked.Count];
        var best = new int[masked.Count];
        var bestConfidence = new float[masked.Count];
        var probabilities = new double[_vocabulary];
        for (var j = 0; j < masked.Count; j++)
        {
            var logits = output.Slice(masked[j] * _vocabulary, _vocabulary);
            Softmax(logits, 1.0, probabilities);
            best[j] = ArgMax(probabilities);
            bestConfidence[j] = (float)probabilities[best[j]];
            drawn[j] = temperature > 0 ? Draw(logits, uniforms[j]) : best[j];
            drawnConfidence[j] = (float)probabilities[drawn[j]];
        }

        var chosen = new List<int>();
        var last = step.AlphaBarTo >= 1;
        if (last)
        {
            chosen.AddRange(masked);
        }
        else if (masked.Count > 0)
        {
            var ratio = (1 - step.AlphaBarTo) / (1 - step.AlphaBarFrom);
            var count = masked.Count - (int)Math.Floor((masked.Count * ratio) + 1e-9);
            policy.Choose(new UnmaskingInput(masked, drawnConfidence, drawn, count, step, Settings), chosen);
            if (chosen.Count == 0 && count > 0)
            {
                throw new InvalidOperationException($"Unmasking policy '{policy.Name}' chose no position although the schedule unmasks {count}.");
            }
        }

        var index = new Dictionary<int, int>(masked.Count);
        for (var j = 0; j < masked.Count; j++)
        {
            index[masked[j]] = j;
        }

        foreach (var p in chosen)
        {
            if (!index.TryGetValue(p, out var j) || (int)tokens[p] != _mask)
            {
                throw new InvalidOperationException($"Unmasking policy '{policy.Name}' chose position {p}, which is not masked (or was chosen twice).");
            }

            tokens[p] = drawn[j];
            confidence[p] = drawnConfidence[j];
        }

        state.CopyTo(prediction);
        for (var j = 0; j < masked.Count; j++)
        {
            var p = masked[j];
            if ((int)tokens[p] == _mask)
            {
                prediction[p] = best[j];
                prediction[_length + p] = bestConfidence[j];
            }
        }
    }

    public void Prior(RngKey key, Span<float> state)
    {
        for (var p = 0; p < _length; p++)
        {
            state[p] = promptTokens[p];
            state[_length + p] = promptTokens[p] == _mask ? 0f : 1f;
        }
    }

    // The masked prior is the prompt itself, identical for every root: a neighbour is another root, which differs
    // from the pivot through its own key's draws.
    public void Neighbour(ReadOnlySpan<float> pivotPrior, double similarity, Span<float> state)
    {
    }

    public void Renoise(ReadOnlySpan<float> state, StepSchedule schedule, int fromStep, int toStep, RngKey key, bool forFork, Span<float> destination)
    {
        state.CopyTo(destination);
        var candidates = new List<int>();
        var masked = 0;
        for (var p = 0; p < _length; p++)
        {
            if ((int)state[p] == _mask)
            {
                masked++;
            }
            else if (!clamped[p])
            {
                candidates.Add(p);
            }
        }

        var target = (int)Math.Round(_maskable * (1 - schedule.AlphaBarAt(toStep)), MidpointRounding.AwayFromZero);
        var count = Math.Clamp(target - masked, 0, candidates.Count);
        IEnumerable<int> order;
        if (forFork || randomRemask)
        {
            // Forked children must differ from each other, so their re-masked sets come from their own keys.
            var u = new double[candidates.Count];
            key.FillUniform(NoiseUse.Renoise, toStep, u);
            order = Enumerable.Range(0, candidates.Count).OrderBy(i => u[i]).ThenBy(i => i).Select(i => candidates[i]);
        }
        else
        {
            var confidence = state[_length..(2 * _length)].ToArray();
            order = candidates.OrderBy(p => confidence[p]).ThenBy(p => p);
        }

        foreach (var p in order.Take(count))
        {
            destination[p] = _mask;
            destination[_length + p] = 0f;
        }
    }

    private void Softmax(ReadOnlySpan<float> logits, double temperatureScale, double[] probabilities)
    {
        var max = double.NegativeInfinity;
        for (var v = 0; v < _vocabulary; v++)
        {
            if (v != _mask)
            {
                max = Math.Max(max, logits[v] / temperatureScale);
            }
        }

        var sum = 0.0;
        for (var v = 0; v < _vocabulary; v++)
        {
            probabilities[v] = v == _mask ? 0 : Math.Exp((logits[v] / temperatureScale) - max);
            sum += probabilities[v];
        }

        for (var v = 0; v < _vocabulary; v++)
        {
            probabilities[v] /= sum;
        }
    }

    private int ArgMax(double[] probabilities)
    {
        var best = _mask == 0 ? 1 : 0;
        for (var v = 0; v < _vocabulary; v++)
        {
            if (v != _mask && probabilities[v] > probabilities[best])
            {
                best = v;
            }
        }

        return best;
    }

    /// <summary>One token from softmax(logits / T), restricted to the top-k and the top-p nucleus, with the uniform u.</summary>
    private int Draw(ReadOnlySpan<float> logits, double u)
    {
        var tempered = new double[_vocabulary];
        Softmax(logits, temperature, tempered);
        var order = Enumerable.Range(0, _vocabulary).Where(v => v != _mask).OrderByDescending(v => tempered[v]).ThenBy(v => v).ToList();
        if (topK > 0)
        {
            order = order.Take(topK).ToList();
        }

        if (topP < 1)
        {
            var kept = 0;
            var cumulative = 0.0;
            var total = order.Sum(v => tempered[v]);
            while (kept < order.Count && (kept == 0 || cumulative < topP * total))
            {
                cumulative += tempered[order[kept++]];
            }

            order = order.Take(kept).ToList();
        }

        var mass = order.Sum(v => tempered[v]);
        var at = u * mass;
        foreach (var v in order)
        {
            at -= tempered[v];
            if (at < 0)
            {
                return v;
            }
        }

        return order[^1];
    }
}
