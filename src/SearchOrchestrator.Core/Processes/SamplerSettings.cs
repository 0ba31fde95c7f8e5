using System.Collections.Immutable;
using System.Globalization;
using System.Text;

namespace SearchOrchestrator.Processes;

/// <summary>
/// A request's sampler settings as plain data: a sampler name (<c>ddim</c>, <c>masked</c>) with numeric and text
/// parameters. The settings travel with every step, so a remote worker rebuilds the same sampler from them with
/// <see cref="DiffusionProcess.CreateSampler(SamplerSettings, TokenPrompt?)"/>. Equality is by content.
/// </summary>
public sealed record SamplerSettings
{
    /// <summary>Creates settings; parameter names are case-sensitive.</summary>
    public SamplerSettings(string name, IEnumerable<KeyValuePair<string, double>>? numbers = null, IEnumerable<KeyValuePair<string, string>>? texts = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        Name = name;
        Numbers = (numbers ?? []).ToImmutableSortedDictionary(StringComparer.Ordinal);
        Texts = (texts ?? []).ToImmutableSortedDictionary(StringComparer.Ordinal);
    }

    /// <summary>The sampler's name.</summary>
    public string Name { get; }

    /// <summary>Numeric parameters by name, sorted.</summary>
    public ImmutableSortedDictionary<string, double> Numbers { get; }

    /// <summary>Text parameters by name, sorted.</summary>
    public ImmutableSortedDictionary<string, string> Texts { get; }

    /// <summary>The DDIM sampler of the gaussian process with stochasticity η.</summary>
    public static SamplerSettings Ddim(double eta) => new(SamplerNames.Ddim, [new(SamplerParameters.Eta, eta)]);

    /// <summary>A numeric parameter, or <paramref name="fallback"/> when it is not set.</summary>
    public double Number(string name, double fallback) => Numbers.TryGetValue(name, out var value) ? value : fallback;

    /// <summary>A text parameter, or <paramref name="fallback"/> when it is not set.</summary>
    public string Text(string name, string fallback) => Texts.TryGetValue(name, out var value) ? value : fallback;

    /// <summary>A copy with one numeric parameter set.</summary>
    public SamplerSettings With(string name, double value) => new(Name, Numbers.SetItem(name, value), Texts);

    /// <summary>A copy with one text parameter set.</summary>
    public SamplerSettings With(string name, string value) => new(Name, Numbers, Texts.SetItem(name, value));

    /// <inheritdoc />
    public bool Equals(SamplerSettings? other) =>
        other is not null && Name == other.Name
        && Numbers.Count == other.Numbers.Count && Numbers.All(p => other.Numbers.TryGetValue(p.Key, out var v) && v.Equals(p.Value))
        && Texts.Count == other.Texts.Count && Texts.All(p => other.Texts.TryGetValue(p.Key, out var v) && v == p.Value);

    /// <inheritdoc />
    public override int GetHashCode() => StringComparer.Ordinal.GetHashCode(ToString());

    /// <summary>The canonical text, e.g. <c>masked(temperature=0.7, policy=confidence)</c>; numbers first, each group sorted.</summary>
    public override string ToString()
    {
        var text = new StringBuilder(Name).Append('(');
        var parts = Numbers.Select(p => $"{p.Key}={p.Value.ToString("R", CultureInfo.InvariantCulture)}")
            .Concat(Texts.Select(p => $"{p.Key}={p.Value}"));
        return text.Append(string.Join(", ", parts)).Append(')').ToString();
    }
}

/// <summary>Sampler names.</summary>
internal static class SamplerNames
{
    /// <summary>DDIM with η, for the gaussian process.</summary>
    public const string Ddim = "ddim";

    /// <summary>Parallel unmasking with a policy, for the masked process.</summary>
    public const string Masked = "masked";
}

/// <summary>Sampler parameter names.</summary>
internal static class SamplerParameters
{
    /// <summary>DDIM η in [0, 1].</summary>
    public const string Eta = "eta";

    /// <summary>Masked: the unmasking policy's name (<see cref="UnmaskingPolicyNames"/>).</summary>
    public const string Policy = "policy";

    /// <summary>Masked: the token-draw temperature; 0 takes the most likely token.</summary>
    public const string Temperature = "temperature";

    /// <summary>Masked: draw only among the k most likely tokens; 0 = all.</summary>
    public const string TopK = "top_k";

    /// <summary>Masked: draw only among the most likely tokens whose probabilities add up to p (nucleus); 1 = all.</summary>
    public const string TopP = "top_p";

    /// <summary>Masked, <c>threshold</c> policy: unmask every position at least this confident.</summary>
    public const string Threshold = "threshold";

    /// <summary>Masked: which positions renoise re-masks, <c>random</c> or <c>confidence</c> (the least confident).</summary>
    public const string Remask = "remask";
}
