using System.Globalization;
using SearchOrchestrator.Tensors;

namespace SearchOrchestrator.Processes;

/// <summary>
/// The <c>masked</c> process: absorbing-state discrete diffusion over a token vocabulary (Austin et al., 2021, D3PM;
/// Sahoo et al., 2024, MDLM; Nie et al., 2025, LLaDA). A clean sequence is noised by replacing tokens with the mask id;
/// the denoiser maps (tokens with masks, t) to logits per position, and a sampler unmasks positions in parallel over N
/// steps. A node's state is its L token ids (exact small integers in floats) followed by L confidences: per position,
/// the model's probability of the token there when it was unmasked (1 for prompt tokens, 0 while masked), which
/// lowest-confidence renoising reads. The sample is the first L values.
/// </summary>
internal sealed class MaskedProcess : DiffusionProcess
{
    private readonly string[] _vocabulary;

    /// <summary>Creates the process for sequences of <paramref name="sequenceLength"/> tokens.</summary>
    /// <param name="sequenceLength">L, the positions per sequence.</param>
    /// <param name="vocabularySize">V, the logits per position (the mask id included).</param>
    /// <param name="maskId">The mask token's id, in [0, V).</param>
    /// <param name="vocabulary">Optional text of each token id, for decoding (and parsing one-character prompts).</param>
    /// <param name="text">For a text model: its tokenizer and how a prompt is laid into the sequence.</param>
    public MaskedProcess(int sequenceLength, int vocabularySize, int maskId, IReadOnlyList<string>? vocabulary = null, TextLayout? text = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(sequenceLength, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(vocabularySize, 2);
        if (maskId < 0 || maskId >= vocabularySize)
        {
            throw new ArgumentOutOfRangeException(nameof(maskId), maskId, $"The mask id must lie in [0, {vocabularySize}).");
        }

        if (vocabulary is not null && vocabulary.Count != vocabularySize)
        {
            throw new ArgumentException($"The vocabulary has {vocabulary.Count} entries for {vocabularySize} token ids.", nameof(vocabulary));
        }

        SequenceLength = sequenceLength;
        VocabularySize = vocabularySize;
        MaskId = maskId;
        _vocabulary = vocabulary is null ? [] : [.. vocabulary];
        if (text is { AnswerLength: { } answer } && (answer < 1 || answer >= sequenceLength || text.PadId is null))
        {
            throw new ArgumentException($"An answer span of {answer} needs 1 <= length < {sequenceLength} and a pad id.", nameof(text));
        }

        Text = text;
    }

    /// <inheritdoc />
    public override string Name => "masked";

    /// <summary>L, the positions per sequence.</summary>
    public int SequenceLength { get; }

    /// <summary>V, the token ids (the mask included).</summary>
    public int VocabularySize { get; }

    /// <summary>The mask token's id.</summary>
    public int MaskId { get; }

    /// <summary>The text of each token id, or empty when the manifest has no vocabulary.</summary>
    public IReadOnlyList<string> Vocabulary => _vocabulary;

    /// <summary>For a text model (tokenizer.json beside the ONNX file): its tokenizer and prompt layout; null otherwise.</summary>
    public TextLayout? Text { get; }

    /// <summary>The settings of a request that names no sampler: confidence order, most likely tokens, least-confident re-masking.</summary>
    public static SamplerSettings DefaultSettings { get; } = new(
        SamplerNames.Masked,
        [new(SamplerParameters.Temperature, 0)],
        [new(SamplerParameters.Policy, UnmaskingPolicyNames.Confidence), new(SamplerParameters.Remask, RemaskNames.Confidence)]);

    /// <inheritdoc />
    public override StepSchedule Steps(int steps)
    {
        if (steps < 1 || steps > SequenceLength)
        {
            throw new InvalidRequestException("steps", $"steps must be between 1 and {SequenceLength} (the model's sequence length), got {steps}.");
        }

        return StepSchedule.Masked(steps);
    }

    /// <inheritdoc />
    public override int StateElements(SampleShape shape)
    {
        ArgumentNullException.ThrowIfNull(shape);
        return 2 * shape.ElementCount;
    }

    /// <inheritdoc />
    public override int OutputElements(SampleShape shape)
    {
        ArgumentNullException.ThrowIfNull(shape);
        return shape.ElementCount * VocabularySize;
    }

    /// <inheritdoc />
    public override SamplerSettings DefaultSampler(double eta)
    {
        if (eta != 0)
        {
            throw new InvalidRequestException("eta", $"eta applies to gaussian models; this model's process is masked (set the sampler's temperature and policy instead), got eta {eta}.");
        }

        return DefaultSettings;
    }

    /// <inheritdoc />
    public override ISampler CreateSampler(SamplerSettings settings, TokenPrompt? prompt = null)
    {
        ArgumentNullException.ThrowIfNull(settings);
        if (settings.Name != SamplerNames.Masked)
        {
            throw new InvalidRequestException("sampler", $"the masked process samples with '{SamplerNames.Masked}', not {CallerInput.Quote(settings.Name)}.");
        }

        var policy = UnmaskingPolicyCatalog.Get(settings.Text(SamplerParameters.Policy, UnmaskingPolicyNames.Confidence));
        var knownNumbers = new HashSet<string>([SamplerParameters.Temperature, SamplerParameters.TopK, SamplerParameters.TopP, .. policy.Parameters], StringComparer.Ordinal);
        var knownTexts = new HashSet<string>([SamplerParameters.Policy, SamplerParameters.Remask, .. policy.Parameters], StringComparer.Ordinal);
        var unknown = settings.Numbers.Keys.Where(k => !knownNumbers.Contains(k)).Concat(settings.Texts.Keys.Where(k => !knownTexts.Contains(k))).ToList();
        if (unknown.Count > 0)
        {
            throw new InvalidRequestException("sampler", $"the masked sampler with policy '{policy.Name}' does not take {CallerInput.QuoteList(unknown)}; it takes {string.Join(", ", knownNumbers.Concat(knownTexts).Order(StringComparer.Ordinal))}.");
        }

        var temperature = settings.Number(SamplerParameters.Temperature, 0);
        if (!(temperature >= 0 && double.IsFinite(temperature)))
        {
            throw new InvalidRequestException("sampler.temperature", $"temperature must be 0 (most likely token) or positive, got {temperature}.");
        }

        var topK = settings.Number(SamplerParameters.TopK, 0);
        if (!(topK >= 0 && topK < VocabularySize && topK == Math.Floor(topK)))
        {
            throw new InvalidRequestException("sampler.top_k", $"top_k must be a whole number from 0 (off) to {VocabularySize - 2}, got {topK}.");
        }

        var topP = settings.Number(SamplerParameters.TopP, 1);
        if (!(topP > 0 && topP <= 1))
        {
            throw new InvalidRequestException("sampler.top_p", $"top_p must lie in (0, 1] (1 = off), got {topP}.");
        }

        var threshold = settings.Number(SamplerParameters.Threshold, 0.9);
        if (!(threshold > 0 && threshold <= 1))
        {
            throw new InvalidRequestException("sampler.threshold", $"threshold must lie in (0, 1], got {threshold}.");
        }

        var remask = settings.Text(SamplerParameters.Remask, RemaskNames.Confidence);
        if (remask is not (RemaskNames.Random or RemaskNames.Confidence))
        {
            throw new InvalidRequestException("sampler.remask", $"remask must be '{RemaskNames.Random}' or '{RemaskNames.Confidence}', got {CallerInput.Quote(remask)}.");
        }

        var (tokens, clamped) = Resolve(prompt);
        return new MaskedSampler(this, settings, policy, temperature, (int)topK, topP, remask == RemaskNames.Random, tokens, clamped);
    }

    /// <inheritdoc />
    public override TokenPrompt? PromptFromCondition(string condition) =>
        Text is not null ? TextPrompt(condition ?? string.Empty, "prompt")
        : string.IsNullOrEmpty(condition) || _vocabulary.Length == 0 || _vocabulary.Any(v => v.Length != 1) ? null : Parse(condition, "condition");

    /// <summary>
    /// A text model's prompt: its tokens (clamped), the answer span of masks, then padding (clamped) to the sequence's
    /// end, as <see cref="Text"/> lays it out.
    /// </summary>
    /// <exception cref="InvalidOperationException">The model is not a text model.</exception>
    /// <exception cref="InvalidRequestException">The prompt leaves no room for the answer, or <paramref name="answerLength"/> does not fit.</exception>
    /// <param name="prompt">The prompt text.</param>
    /// <param name="field">The request field the prompt came from, for errors.</param>
    /// <param name="answerLength">The request's answer span (field <c>answer_length</c>); null for the model's default.</param>
    public TokenPrompt TextPrompt(string prompt, string field, int? answerLength = null)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        var text = Text ?? throw new InvalidOperationException("This masked model has no tokenizer; it takes token ids.");
        var ids = text.Tokenizer.Encode(prompt);
        if (answerLength is { } asked)
        {
            if (asked < 1 || ids.Count + asked > SequenceLength)
            {
                throw new InvalidRequestException("answer_length", $"answer_length must lie in 1 .. {SequenceLength - ids.Count} (the model's sequence of {SequenceLength} less the prompt's {ids.Count} tokens), got {asked}.");
            }

            if (ids.Count + asked < SequenceLength && text.PadId is null)
            {
                throw new InvalidRequestException("answer_length", $"this model has no pad token id (generation_config.json / config.json pad_token_id), so its answer fills the rest of the sequence: leave answer_length unset or give {SequenceLength - ids.Count}.");
            }
        }

        var answer = answerLength ?? text.AnswerLength ?? SequenceLength - ids.Count;
        if (answer < 1 || ids.Count + answer > SequenceLength)
        {
            throw new InvalidRequestException(field, $"the prompt is {ids.Count} tokens, which leaves no room for an answer of {Math.Max(answer, 1)} in the model's sequence of {SequenceLength}; shorten it to at most {SequenceLength - Math.Max(text.AnswerLength ?? 1, 1)} tokens.");
        }

        var tokens = new int[SequenceLength];
        for (var p = 0; p < SequenceLength; p++)
        {
            tokens[p] = p < ids.Count ? ids[p] : p < ids.Count + answer ? MaskId : text.PadId!.Value;
        }

        return new TokenPrompt(tokens);
    }

    /// <summary>
    /// Parses a full-length text whose every character is one token (a Sudoku puzzle <c>53..7....</c>): the mask's text,
    /// <c>.</c> or <c>0</c> leave a position to fill; every other position is clamped.
    /// </summary>
    /// <exception cref="InvalidRequestException">The text has the wrong length or a character outside the vocabulary.</exception>
    public TokenPrompt Parse(string text, string field)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (_vocabulary.Length == 0 || _vocabulary.Any(v => v.Length != 1))
        {
            throw new InvalidRequestException(field, "this model's vocabulary is not one character per token, so it takes token ids rather than text.");
        }

        if (text.Length != SequenceLength)
        {
            throw new InvalidRequestException(field, $"must have exactly {SequenceLength} characters (one per position, '.' or '0' for a blank), got {text.Length}.");
        }

        var tokens = new int[text.Length];
        for (var p = 0; p < text.Length; p++)
        {
            var c = text[p];
            var id = c is '.' or '0' && Array.IndexOf(_vocabulary, c.ToString()) < 0 ? MaskId : Array.IndexOf(_vocabulary, c.ToString());
            if (id < 0)
            {
                throw new InvalidRequestException(field, $"character '{c}' at position {p} is not a token of this model; use {string.Join(" ", _vocabulary)} (or '.' for a blank).");
            }

            tokens[p] = id;
        }

        return new TokenPrompt(tokens);
    }

    /// <summary>
    /// The text of the sample's tokens (no separator when every token is one character), or null without a vocabulary.
    /// A text model decodes with its tokenizer: given the <paramref name="condition"/> (the prompt) the sample was
    /// generated for, the answer (the positions the prompt left masked), otherwise (no prompt, or token ids) the whole
    /// sequence; special tokens
    /// are left out.
    /// </summary>
    /// <param name="sample">The sample's token ids.</param>
    /// <param name="condition">The prompt it was generated for, if any.</param>
    /// <param name="answerLength">The request's answer length the prompt was laid out with (null: the model's default).</param>
    public string? Decode(ReadOnlySpan<float> sample, string? condition = null, int? answerLength = null)
    {
        if (Text is { } text)
        {
            var layout = string.IsNullOrEmpty(condition) ? null : TextPrompt(condition, "prompt", answerLength).Tokens;
            var ids = new List<int>();
            for (var p = 0; p < Math.Min(sample.Length, SequenceLength); p++)
            {
                if (layout is null || layout[p] == MaskId)
                {
                    ids.Add((int)sample[p]);
                }
            }

            return text.Tokenizer.Decode(ids);
        }

        if (_vocabulary.Length == 0)
        {
            return null;
        }

        var separator = _vocabulary.All(v => v.Length == 1) ? string.Empty : " ";
        var parts = new string[Math.Min(sample.Length, SequenceLength)];
        for (var p = 0; p < parts.Length; p++)
        {
            var id = (int)sample[p];
            parts[p] = id >= 0 && id < _vocabulary.Length ? _vocabulary[id] : id.ToString(CultureInfo.InvariantCulture);
        }

        return string.Join(separator, parts);
    }

    /// <summary>Checks a prompt against the model and expands it to a full sequence and its clamped positions.</summary>
    /// <exception cref="InvalidRequestException">A token id is out of range, the prompt is too long, or a clamped position is invalid.</exception>
    public (int[] Tokens, bool[] Clamped) Resolve(TokenPrompt? prompt)
    {
        var tokens = Enumerable.Repeat(MaskId, SequenceLength).ToArray();
        var clamped = new bool[SequenceLength];
        if (prompt is null)
        {
            return (tokens, clamped);
        }

        if (prompt.Tokens.Count > SequenceLength)
        {
            throw new InvalidRequestException("tokens", $"the prompt has {prompt.Tokens.Count} tokens but the model's sequence holds {SequenceLength}.");
        }

        for (var p = 0; p < prompt.Tokens.Count; p++)
        {
            var id = prompt.Tokens[p];
            if (id < 0 || id >= VocabularySize)
            {
                throw new InvalidRequestException("tokens", $"token id {id} at position {p} is out of range; ids run from 0 to {VocabularySize - 1} (the mask is {MaskId}).");
            }

            tokens[p] = id;
        }

        foreach (var p in prompt.Clamped ?? Enumerable.Range(0, SequenceLength).Where(p => tokens[p] != MaskId))
        {
            if (p < 0 || p >= SequenceLength)
            {
                throw new InvalidRequestException("clamped", $"clamped position {p} is outside the sequence (0 to {SequenceLength - 1}).");
            }

            if (tokens[p] == MaskId)
            {
                throw new InvalidRequestException("clamped", $"clamped position {p} holds the mask; a clamped position needs a token.");
            }

            if (clamped[p])
            {
                throw new InvalidRequestException("clamped", $"position {p} is clamped twice.");
            }

            clamped[p] = true;
        }

        return (tokens, clamped);
    }
}

/// <summary>Which positions the masked sampler's renoise re-masks.</summary>
internal static class RemaskNames
{
    /// <summary>A uniformly random choice among the unmasked, unclamped positions.</summary>
    public const string Random = "random";

    /// <summary>The least confident unmasked, unclamped positions (as Prism does).</summary>
    public const string Confidence = "confidence";
}
