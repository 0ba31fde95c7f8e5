using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.ML.Tokenizers;
using SearchOrchestrator.Onnx.Pipelines;
using SearchOrchestrator.Processes;

namespace SearchOrchestrator.Onnx.Text;

/// <summary>
/// A Hugging Face <c>tokenizer.json</c> (the <c>tokenizers</c> library's serialization, as LLaDA, Dream and MDLM ship
/// theirs) run by Microsoft.ML.Tokenizers' <see cref="BpeTokenizer"/>, which has no <c>tokenizer.json</c> reader of its
/// own in 2.0.1: this class reads the file's <c>model</c> (type <c>BPE</c>: <c>vocab</c>, <c>merges</c> as "a b"
/// strings or pairs, <c>unk_token</c>, <c>continuing_subword_prefix</c>, <c>end_of_word_suffix</c>),
/// <c>added_tokens</c> (kept whole, never split), <c>normalizer</c> (none or <c>NFC</c>) and <c>pre_tokenizer</c>
/// (<c>ByteLevel</c> with GPT-2's pattern, or a <c>Sequence</c> of a regex <c>Split</c> and <c>ByteLevel</c>, as
/// Qwen2 / Dream write it) and hands them to the library. Other model types (WordPiece, Unigram, WordLevel) are refused
/// naming the field.
/// </summary>
public sealed partial class HuggingFaceTokenizer : ITextTokenizer
{
    /// <summary>The file's name inside a model folder.</summary>
    public const string FileName = "tokenizer.json";

    private readonly BpeTokenizer _bpe;
    private readonly HashSet<int> _special;

    private HuggingFaceTokenizer(BpeTokenizer bpe, IReadOnlyDictionary<string, int> added, HashSet<int> special)
    {
        _bpe = bpe;
        AddedTokens = added;
        _special = special;
    }

    /// <summary>The added tokens (special or not) by their text.</summary>
    public IReadOnlyDictionary<string, int> AddedTokens { get; }

    /// <summary>Reads <c>tokenizer.json</c> at <paramref name="path"/>.</summary>
    /// <exception cref="PipelineLayoutException">The file is missing, not JSON, or has a field this reader does not support; the message names it.</exception>
    public static HuggingFaceTokenizer Load(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!File.Exists(path))
        {
            throw new PipelineLayoutException(FileName, "missing (a text model's Hugging Face tokenizer)");
        }

        JsonElement root;
        try
        {
            using var document = JsonDocument.Parse(File.ReadAllText(path));
            root = document.RootElement.Clone();
        }
        catch (JsonException ex)
        {
            throw new PipelineLayoutException(FileName, ex.Message);
        }

        if (!root.TryGetProperty("model", out var model) || model.ValueKind != JsonValueKind.Object)
        {
            throw Invalid("model", "missing");
        }

        var type = Text(model, "type");
        if (type != "BPE")
        {
            throw Invalid("model.type", $"{(type is null ? "missing" : $"'{type}' is not supported")}; this reader takes BPE models (LLaDA's, Dream's, GPT-2's)");
        }

        if (!model.TryGetProperty("vocab", out var vocabJson) || vocabJson.ValueKind != JsonValueKind.Object)
        {
            throw Invalid("model.vocab", "missing (token -> id)");
        }

        var vocabulary = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var entry in vocabJson.EnumerateObject())
        {
            vocabulary[entry.Name] = entry.Value.TryGetInt32(out var id) ? id : throw Invalid($"model.vocab.{entry.Name}", "not an integer id");
        }

        var merges = new List<string>();
        if (model.TryGetProperty("merges", out var mergesJson) && mergesJson.ValueKind == JsonValueKind.Array)
        {
            foreach (var merge in mergesJson.EnumerateArray())
            {
                // Older files write "a b", newer ones ["a", "b"].
                merges.Add(merge.ValueKind == JsonValueKind.String ? merge.GetString()!
                    : merge.ValueKind == JsonValueKind.Array && merge.GetArrayLength() == 2 ? $"{merge[0].GetString()} {merge[1].GetString()}"
                    : throw Invalid("model.merges", $"an entry is neither \"a b\" nor [\"a\", \"b\"]: {merge}"));
            }
        }

        var added = new Dictionary<string, int>(StringComparer.Ordinal);
        var special = new HashSet<int>();
        if (root.TryGetProperty("added_tokens", out var addedJson) && addedJson.ValueKind == JsonValueKind.Array)
        {
            foreach (var token in addedJson.EnumerateArray())
            {
                var content = Text(token, "content") ?? throw Invalid("added_tokens", "an entry has no content");
                var id = token.TryGetProperty("id", out var idJson) && idJson.TryGetInt32(out var i) ? i : throw Invalid("added_tokens", $"'{content}' has no integer id");
                added[content] = id;
                if (token.TryGetProperty("special", out var isSpecial) && isSpecial.ValueKind == JsonValueKind.True)
                {
                    special.Add(id);
                }
            }
        }

        var (preTokenizer, byteLevel) = PreTokenizerOf(root, added);
        try
        {
            var bpe = BpeTokenizer.Create(new BpeOptions(vocabulary)
            {
                Merges = merges,
                ByteLevel = byteLevel,
                PreTokenizer = preTokenizer,
                Normalizer = NormalizerOf(root),
                SpecialTokens = added.Count > 0 ? added : null,
                UnknownToken = Text(model, "unk_token"),
                ContinuingSubwordPrefix = Text(model, "continuing_subword_prefix"),
                EndOfWordSuffix = Text(model, "end_of_word_suffix"),
            });
            return new HuggingFaceTokenizer(bpe, added, special);
        }
        catch (Exception ex) when (ex is ArgumentException or InvalidOperationException or FormatException)
        {
            throw Invalid("model.merges", $"not a BPE merge list for model.vocab ({ex.Message})");
        }
    }

    /// <inheritdoc />
    public IReadOnlyList<int> Encode(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        return _bpe.EncodeToIds(text);
    }

    /// <inheritdoc />
    public string Decode(IEnumerable<int> ids)
    {
        ArgumentNullException.ThrowIfNull(ids);
        return _bpe.Decode(ids.Where(id => !_special.Contains(id)), considerSpecialTokens: false);
    }

    private static (PreTokenizer PreTokenizer, bool ByteLevel) PreTokenizerOf(JsonElement root, Dictionary<string, int> added)
    {
        var specials = added.Count > 0 ? added : null;
        if (!root.TryGetProperty("pre_tokenizer", out var pre) || pre.ValueKind == JsonValueKind.Null)
        {
            throw Invalid("pre_tokenizer", "missing; this reader takes ByteLevel, or a Sequence of a regex Split and ByteLevel");
        }

        switch (Text(pre, "type"))
        {
            case "ByteLevel":
                if (pre.TryGetProperty("add_prefix_space", out var prefix) && prefix.ValueKind == JsonValueKind.True)
                {
                    throw Invalid("pre_tokenizer.add_prefix_space", "true is not supported (GPT-2-style exports write false)");
                }

                return (new RegexPreTokenizer(Gpt2Pattern(), specials), true);
            case "Sequence" when pre.TryGetProperty("pretokenizers", out var steps) && steps.ValueKind == JsonValueKind.Array
                && steps.GetArrayLength() == 2 && Text(steps[0], "type") == "Split" && Text(steps[1], "type") == "ByteLevel"
                && steps[0].TryGetProperty("pattern", out var pattern) && Text(pattern, "Regex") is { } regex:
                return (new RegexPreTokenizer(new Regex(regex, RegexOptions.Compiled), specials), true);
            default:
                throw Invalid("pre_tokenizer.type", $"'{Text(pre, "type")}' is not supported; this reader takes ByteLevel, or a Sequence of a regex Split and ByteLevel");
        }
    }

    private static Normalizer? NormalizerOf(JsonElement root)
    {
        if (!root.TryGetProperty("normalizer", out var normalizer) || normalizer.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        return Text(normalizer, "type") == "NFC" ? new NfcNormalizer() : throw Invalid("normalizer.type", $"'{Text(normalizer, "type")}' is not supported (none or NFC)");
    }

    private static string? Text(JsonElement json, string field) =>
        json.ValueKind == JsonValueKind.Object && json.TryGetProperty(field, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    private static PipelineLayoutException Invalid(string field, string message) => new(FileName, $"{field}: {message}");

    // GPT-2's pattern, which the ByteLevel pre-tokenizer applies when use_regex is true.
    [GeneratedRegex(@"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+")]
    private static partial Regex Gpt2Pattern();

    /// <summary>Unicode normalization form C, the <c>NFC</c> normalizer of <c>tokenizers</c>.</summary>
    private sealed class NfcNormalizer : Normalizer
    {
        public override string Normalize(string original) => original.Normalize(NormalizationForm.FormC);

        public override string Normalize(ReadOnlySpan<char> original) => original.ToString().Normalize(NormalizationForm.FormC);
    }
}
