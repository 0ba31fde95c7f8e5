namespace SearchOrchestrator.Denoising;

/// <summary>
/// The conditions a denoiser understands: labels a caller names ("7") and the ids the network takes, plus
/// the optional null id that classifier-free guidance evaluates as the unconditional branch.
/// </summary>
public sealed class ConditionVocabulary
{
    private readonly Dictionary<string, long> _ids;
    private readonly string[] _labels;

    /// <summary>Creates a vocabulary from label → id pairs (in their declared order) and an optional null id.</summary>
    public ConditionVocabulary(IEnumerable<KeyValuePair<string, long>> ids, long? nullId)
    {
        ArgumentNullException.ThrowIfNull(ids);
        _ids = new Dictionary<string, long>(StringComparer.Ordinal);
        var labels = new List<string>();
        foreach (var (label, id) in ids)
        {
            if (!_ids.TryAdd(label, id))
            {
                throw new ArgumentException($"The condition label '{label}' appears twice.", nameof(ids));
            }

            if (id == nullId)
            {
                throw new ArgumentException($"The condition label '{label}' uses the null id {id}.", nameof(ids));
            }

            labels.Add(label);
        }

        if (labels.Count == 0)
        {
            throw new ArgumentException("A condition vocabulary needs at least one label.", nameof(ids));
        }

        _labels = [.. labels];
        NullId = nullId;
    }

    private ConditionVocabulary()
    {
        _ids = new Dictionary<string, long>(StringComparer.Ordinal);
        _labels = [];
    }

    /// <summary>
    /// The vocabulary of a model that takes no condition input, whose condition is free text (a masked model's prompt, a
    /// puzzle): every label resolves to id 0 and reaches the verifiers as it is.
    /// </summary>
    public static ConditionVocabulary FreeText { get; } = new();

    /// <summary>True for <see cref="FreeText"/>: any label is accepted.</summary>
    public bool IsFreeText => _labels.Length == 0;

    /// <summary>The labels in declared order.</summary>
    public IReadOnlyList<string> Labels => _labels;

    /// <summary>The id of the null (unconditional) condition, or null when the model has none.</summary>
    public long? NullId { get; }

    /// <summary>True when the model can be run with classifier-free guidance.</summary>
    public bool SupportsGuidance => NullId is not null;

    /// <summary>The id for <paramref name="label"/>; a label outside the vocabulary is the caller's mistake.</summary>
    public long Resolve(string label, string modelName)
    {
        if (label is not null && _ids.TryGetValue(label, out var id))
        {
            return id;
        }

        if (IsFreeText && label is not null)
        {
            return 0;
        }

        throw new InvalidRequestException("condition", $"condition {CallerInput.Quote(label)} is not in the vocabulary of model '{modelName}'; use one of: {Describe()}.");
    }

    /// <summary>The labels for an error message: all of them, or the first and last of a long list.</summary>
    public string Describe() => _labels.Length <= 12
        ? string.Join(", ", _labels)
        : $"{string.Join(", ", _labels.Take(5))}, … {_labels[^1]} ({_labels.Length} labels)";
}
