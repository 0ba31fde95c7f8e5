using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.ML.Tokenizers;

namespace SearchOrchestrator.Onnx.Pipelines;

/// <summary>
/// CLIP's tokenizer as a diffusers layout's <c>tokenizer/</c> folder ships it (<c>vocab.json</c>, <c>merges.txt</c>,
/// <c>tokenizer_config.json</c>, <c>special_tokens_map.json</c>), run by Microsoft.ML.Tokenizers' byte-level BPE with
/// the <c>&lt;/w&gt;</c> end-of-word suffix: lower-cased, split into letter runs, single digits and punctuation runs
/// (CLIP's pattern), then framed as <c>bos</c> + tokens + <c>eos</c>, truncated and padded with <c>pad</c> to
/// <see cref="MaxLength"/>, as transformers' <c>CLIPTokenizer(..., padding="max_length", truncation=True)</c> does.
/// CLIP's ftfy and HTML clean-up are not applied.
/// </summary>
public sealed partial class ClipTokenizer
{
    private readonly BpeTokenizer _bpe;

    private ClipTokenizer(BpeTokenizer bpe, int maxLength, int bos, int eos, int pad)
    {
        _bpe = bpe;
        MaxLength = maxLength;
        BosId = bos;
        EosId = eos;
        PadId = pad;
    }

    /// <summary>Tokens per encoded prompt, start and end included (77 for Stable Diffusion).</summary>
    public int MaxLength { get; }

    /// <summary>The start-of-text id.</summary>
    public int BosId { get; }

    /// <summary>The end-of-text id.</summary>
    public int EosId { get; }

    /// <summary>The id padding fills with (SD 1.x: end-of-text; SD 2.x: <c>!</c>).</summary>
    public int PadId { get; }

    /// <summary>Number of tokens in the vocabulary.</summary>
    public int VocabularySize => _bpe.Vocabulary.Count;

    /// <summary>
    /// Reads the tokenizer from <paramref name="folder"/>; <paramref name="maxLength"/> is used when
    /// <c>tokenizer_config.json</c> gives no usable <c>model_max_length</c>.
    /// </summary>
    /// <exception cref="PipelineLayoutException">A file is missing or a field is wrong; the message names them.</exception>
    public static ClipTokenizer Load(string folder, int maxLength = 77, string relativeTo = "tokenizer")
    {
        ArgumentNullException.ThrowIfNull(folder);
        var vocabPath = Path.Combine(folder, "vocab.json");
        var mergesPath = Path.Combine(folder, "merges.txt");
        foreach (var (path, name) in new[] { (vocabPath, "vocab.json"), (mergesPath, "merges.txt") })
        {
            if (!File.Exists(path))
            {
                throw new PipelineLayoutException($"{relativeTo}/{name}", "missing (CLIP's BPE needs vocab.json and merges.txt)");
            }
        }

        Dictionary<string, int> vocabulary;
        try
        {
            using var stream = File.OpenRead(vocabPath);
            vocabulary = JsonSerializer.Deserialize<Dictionary<string, int>>(stream) ?? throw new JsonException("null");
        }
        catch (JsonException ex)
        {
            throw new PipelineLayoutException($"{relativeTo}/vocab.json", $"not a token → id object ({ex.Message})");
        }

        var config = ReadJson(folder, "tokenizer_config.json", relativeTo);
        var special = ReadJson(folder, "special_tokens_map.json", relativeTo);
        string Token(string field, string fallback) =>
            TokenText(config, field) ?? TokenText(special, field) ?? fallback;
        int Id(string field, string token) => vocabulary.TryGetValue(token, out var id) ? id
            : throw new PipelineLayoutException($"{relativeTo}/tokenizer_config.json", $"{field}: '{token}' is not in vocab.json");

        var bosToken = Token("bos_token", "<|startoftext|>");
        var eosToken = Token("eos_token", "<|endoftext|>");
        var padToken = Token("pad_token", eosToken);
        var unkToken = Token("unk_token", eosToken);
        int bos = Id("bos_token", bosToken), eos = Id("eos_token", eosToken), pad = Id("pad_token", padToken);
        _ = Id("unk_token", unkToken);
        if (config is { } c && c.TryGetProperty("model_max_length", out var max))
        {
            // transformers writes a huge sentinel when a tokenizer has no limit; the text encoder's length applies then.
            if (!max.TryGetDouble(out var m) || m < 3)
            {
                throw new PipelineLayoutException($"{relativeTo}/tokenizer_config.json", $"model_max_length: must be a number of at least 3 (start, one token, end), got {max}");
            }

            if (m <= 1_000_000)
            {
                maxLength = (int)m;
            }
        }

        var specials = new Dictionary<string, int> { [bosToken] = bos, [eosToken] = eos };
        try
        {
            var bpe = BpeTokenizer.Create(new BpeOptions(vocabulary)
            {
                Merges = File.ReadLines(mergesPath).Where(l => !l.StartsWith("#version", StringComparison.Ordinal) && l.Length > 0),
                ByteLevel = true,
                EndOfWordSuffix = "</w>",
                Normalizer = LowerCaseNormalizer.Instance,
                PreTokenizer = new RegexPreTokenizer(ClipPattern(), specials),
                SpecialTokens = specials,
                UnknownToken = unkToken,
            });
            return new ClipTokenizer(bpe, maxLength, bos, eos, pad);
        }
        catch (Exception ex) when (ex is ArgumentException or InvalidOperationException or FormatException)
        {
            throw new PipelineLayoutException($"{relativeTo}/merges.txt", $"not a BPE merge list for vocab.json ({ex.Message})");
        }
    }

    /// <summary>The tokens of <paramref name="prompt"/> without bos and eos, before truncation.</summary>
    public int CountTokens(string prompt)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        return _bpe.CountTokens(Normalize(prompt));
    }

    /// <summary>The <see cref="MaxLength"/> token ids of <paramref name="prompt"/>: bos, its tokens (truncated), eos, padding.</summary>
    public int[] Encode(string prompt)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        var ids = new int[MaxLength];
        Array.Fill(ids, PadId);
        ids[0] = BosId;
        var tokens = _bpe.EncodeToIds(Normalize(prompt));
        var kept = Math.Min(tokens.Count, MaxLength - 2);
        for (var i = 0; i < kept; i++)
        {
            ids[i + 1] = tokens[i];
        }

        ids[kept + 1] = EosId;
        return ids;
    }

    private static string Normalize(string prompt) => string.Join(' ', prompt.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries));

    private static JsonElement? ReadJson(string folder, string name, string relativeTo)
    {
        var path = Path.Combine(folder, name);
        if (!File.Exists(path))
        {
            return null;
        }

        try
        {
            using var document = JsonDocument.Parse(File.ReadAllText(path));
            return document.RootElement.Clone();
        }
        catch (JsonException ex)
        {
            throw new PipelineLayoutException($"{relativeTo}/{name}", ex.Message);
        }
    }

    // transformers saves a special token either as its text or as an AddedToken object with "content".
    private static string? TokenText(JsonElement? json, string field) =>
        json is { ValueKind: JsonValueKind.Object } j && j.TryGetProperty(field, out var v)
            ? v.ValueKind switch
            {
                JsonValueKind.String => v.GetString(),
                JsonValueKind.Object when v.TryGetProperty("content", out var content) => content.GetString(),
                _ => null,
            }
            : null;

    // CLIP's pre-tokenizer pattern (openai/CLIP simple_tokenizer.py), applied after lower-casing.
    [GeneratedRegex(@"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+")]
    private static partial Regex ClipPattern();
}
