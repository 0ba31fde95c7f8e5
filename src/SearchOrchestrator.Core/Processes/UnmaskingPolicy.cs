using System.Collections.Concurrent;
using SearchOrchestrator.Randomness;

namespace SearchOrchestrator.Processes;

/// <summary>What an unmasking policy sees for one node's step.</summary>
/// <param name="Masked">The masked positions, ascending.</param>
/// <param name="Confidence">Per masked position (same order), the model's probability of the token drawn for it.</param>
/// <param name="Tokens">The token drawn for each masked position (same order).</param>
/// <param name="Count">How many the schedule unmasks this step (every remaining one at the last step).</param>
/// <param name="Step">The step (index, levels, the node's key).</param>
/// <param name="Settings">The request's sampler settings, for a policy's own parameters.</param>
internal readonly record struct UnmaskingInput(
    IReadOnlyList<int> Masked, IReadOnlyList<float> Confidence, IReadOnlyList<int> Tokens, int Count, SamplerStep Step, SamplerSettings Settings);

/// <summary>
/// Chooses which masked positions a step of the masked sampler reveals. Named and pluggable: the built-ins are
/// <c>random</c>, <c>confidence</c> and <c>threshold</c>; <see cref="UnmaskingPolicyCatalog.Register"/> adds custom orders
/// (e.g. "premises before conclusions", as LogicDiff chooses with a classifier). Implementations must be deterministic
/// given their input (draw randomness only from <see cref="SamplerStep.Key"/>) and thread-safe.
/// </summary>
internal interface IUnmaskingPolicy
{
    /// <summary>The name requests choose the policy by.</summary>
    string Name { get; }

    /// <summary>The sampler parameters this policy reads besides the common ones (may be empty).</summary>
    IReadOnlyList<string> Parameters { get; }

    /// <summary>
    /// Adds the positions to unmask to <paramref name="chosen"/>: a subset of <see cref="UnmaskingInput.Masked"/>, at least one
    /// when any is masked, and every one of them when <see cref="UnmaskingInput.Count"/> equals their number (the last step).
    /// </summary>
    void Choose(UnmaskingInput input, List<int> chosen);
}

/// <summary>Built-in policy names.</summary>
internal static class UnmaskingPolicyNames
{
    /// <summary>A uniformly random order (the MDLM / LLaDA reverse process).</summary>
    public const string Random = "random";

    /// <summary>The schedule's count of most confident positions (LLaDA's low-confidence remasking).</summary>
    public const string Confidence = "confidence";

    /// <summary>Every position at least <c>threshold</c> confident, and never fewer than the schedule's count (Fast-dLLM).</summary>
    public const string Threshold = "threshold";
}

/// <summary>The unmasking policies by name: the built-ins and any registered custom order.</summary>
internal static class UnmaskingPolicyCatalog
{
    private static readonly ConcurrentDictionary<string, IUnmaskingPolicy> Policies = new(StringComparer.Ordinal)
    {
        [UnmaskingPolicyNames.Random] = new RandomUnmasking(),
        [UnmaskingPolicyNames.Confidence] = new ConfidenceUnmasking(),
        [UnmaskingPolicyNames.Threshold] = new ThresholdUnmasking(),
    };

    /// <summary>Every registered name, sorted.</summary>
    public static IReadOnlyList<string> Names => [.. Policies.Keys.Order(StringComparer.Ordinal)];

    /// <summary>Registers a custom policy (a remote worker must register it too); names are unique.</summary>
    public static void Register(IUnmaskingPolicy policy)
    {
        ArgumentNullException.ThrowIfNull(policy);
        if (!Policies.TryAdd(policy.Name, policy) && !ReferenceEquals(Policies[policy.Name], policy))
        {
            throw new ArgumentException($"An unmasking policy named '{policy.Name}' is already registered.", nameof(policy));
        }
    }

    /// <summary>The policy named <paramref name="name"/>.</summary>
    /// <exception cref="InvalidRequestException">No such policy.</exception>
    public static IUnmaskingPolicy Get(string name) =>
        Policies.TryGetValue(name, out var policy)
            ? policy
            : throw new InvalidRequestException("sampler.policy", $"unknown unmasking policy {CallerInput.Quote(name)}; use one of: {string.Join(", ", Names)}.");

    private sealed class RandomUnmasking : IUnmaskingPolicy
    {
        public string Name => UnmaskingPolicyNames.Random;

        public IReadOnlyList<string> Parameters => [];

        public void Choose(UnmaskingInput input, List<int> chosen)
        {
            // A uniformly random subset of Count: sort by one uniform per masked position, keyed by (node, step).
            var u = new double[input.Masked.Count];
            input.Step.Key.FillUniform(NoiseUse.Unmask, input.Step.StepIndex, u);
            chosen.AddRange(Enumerable.Range(0, u.Length).OrderBy(i => u[i]).ThenBy(i => i).Take(input.Count).Select(i => input.Masked[i]));
        }
    }

    private sealed class ConfidenceUnmasking : IUnmaskingPolicy
    {
        public string Name => UnmaskingPolicyNames.Confidence;

        public IReadOnlyList<string> Parameters => [];

        public void Choose(UnmaskingInput input, List<int> chosen) => chosen.AddRange(MostConfident(input).Take(input.Count));
    }

    private sealed class ThresholdUnmasking : IUnmaskingPolicy
    {
        public string Name => UnmaskingPolicyNames.Threshold;

        public IReadOnlyList<string> Parameters => [SamplerParameters.Threshold];

        public void Choose(UnmaskingInput input, List<int> chosen)
        {
            var threshold = input.Settings.Number(SamplerParameters.Threshold, 0.9);
            var confident = Enumerable.Range(0, input.Masked.Count).Count(i => input.Confidence[i] >= threshold);
            chosen.AddRange(MostConfident(input).Take(Math.Max(Math.Max(1, input.Count), confident)));
        }
    }

    /// <summary>Masked positions by descending confidence, ties to the lower position.</summary>
    private static IEnumerable<int> MostConfident(UnmaskingInput input) =>
        Enumerable.Range(0, input.Masked.Count).OrderByDescending(i => input.Confidence[i]).ThenBy(i => input.Masked[i]).Select(i => input.Masked[i]);
}
