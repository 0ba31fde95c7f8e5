using System.Text.Json;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using SearchOrchestrator.Denoising;
using SearchOrchestrator.Onnx.Manifests;
using SearchOrchestrator.Onnx.Pipelines;
using SearchOrchestrator.Processes;
using SearchOrchestrator.Tensors;

namespace SearchOrchestrator.Onnx.Text;

/// <summary>
/// The folder of a diffusion LLM as Hugging Face exports ship it (LLaDA, Dream, MDLM through Optimum or
/// <c>torch.onnx</c>): <c>model.onnx</c> (<c>input_ids</c> [, <c>attention_mask</c>] → <c>logits</c>, no time input),
/// <c>config.json</c>, optional <c>generation_config.json</c>, and <c>tokenizer.json</c>. A folder with a
/// <c>config.json</c> and no <c>model.json</c> or <c>model_index.json</c> is read as one.
/// </summary>
/// <remarks>
/// The fields read: the mask token's id, <c>mask_token_id</c> (config.json, as LLaDA writes it, else
/// generation_config.json, as Dream writes it); the sequence length L, the graph's fixed <c>input_ids</c> axis 1 or
/// generation_config.json's <c>max_length</c>; the answer span, generation_config.json's <c>max_new_tokens</c> (else
/// the rest of the sequence after the prompt); the padding after the answer, <c>pad_token_id</c> (else
/// <c>eos_token_id</c>); the vocabulary V, the graph's fixed <c>logits</c> axis 2 or config.json's <c>vocab_size</c>;
/// and <c>model_type</c>: <c>Dream</c> shifts logits (position i predicts token i + 1).
/// </remarks>
public static class TextModelLayout
{
    /// <summary>The model config every Hugging Face export has.</summary>
    public const string ConfigFile = "config.json";

    /// <summary>The generation defaults beside it.</summary>
    public const string GenerationConfigFile = "generation_config.json";

    /// <summary>Tensor names of the export.</summary>
    public const string InputIds = "input_ids", AttentionMask = "attention_mask", Logits = "logits";

    /// <summary>The <c>model_type</c>s whose logits predict the next position's token.</summary>
    public static readonly IReadOnlyList<string> ShiftedModelTypes = ["Dream"];

    /// <summary>True when <paramref name="folder"/> should be read as a text model (it has a config.json).</summary>
    public static bool LooksLikeTextModel(string folder) => File.Exists(Path.Combine(folder, ConfigFile));

    /// <summary>
    /// Checks the folder's files and the graph's tensors, collecting every error with the file and field it is about;
    /// returns the model with the session <paramref name="open"/> made (disposed when the graph does not fit).
    /// </summary>
    internal static (TextModel? Model, List<string> Errors) Read(string name, string folder, Func<InferenceSession> open)
    {
        var errors = new List<string>();
        var config = ReadJson(folder, ConfigFile, errors, required: true);
        var generation = ReadJson(folder, GenerationConfigFile, errors, required: false);
        var mask = Int(config, "mask_token_id", ConfigFile, errors) ?? Int(generation, "mask_token_id", GenerationConfigFile, errors);
        if (mask is null && config is not null)
        {
            errors.Add($"{ConfigFile}: mask_token_id: missing, and {GenerationConfigFile} has none (the mask token's id: LLaDA's config.json and Dream's generation_config.json give it)");
        }

        HuggingFaceTokenizer? tokenizer = null;
        try
        {
            tokenizer = HuggingFaceTokenizer.Load(Path.Combine(folder, HuggingFaceTokenizer.FileName));
        }
        catch (PipelineLayoutException ex)
        {
            errors.Add(ex.Message);
        }

        if (!File.Exists(Path.Combine(folder, ManifestNames.ModelFileName)))
        {
            errors.Add($"{ManifestNames.ModelFileName}: missing beside {ConfigFile}");
        }

        if (errors.Count > 0)
        {
            return (null, errors);
        }

        var session = open();
        var (model, graphErrors) = Describe(name, session, config, generation, mask!.Value, tokenizer!);
        if (model is null)
        {
            session.Dispose();
        }

        return (model, graphErrors);
    }

    private static (TextModel? Model, List<string> Errors) Describe(string name, InferenceSession session, JsonElement? config, JsonElement? generation, int mask, HuggingFaceTokenizer tokenizer)
    {
        var errors = new List<string>();
        var file = ManifestNames.ModelFileName;
        var inputs = session.InputMetadata;
        foreach (var extra in inputs.Keys.Where(k => k is not (InputIds or AttentionMask)))
        {
            errors.Add($"{file}: input '{extra}' is not one a diffusion LLM's export takes (input_ids, optionally attention_mask; no time input)");
        }

        var ids = Expect(inputs, InputIds, 2, [TensorElementType.Int64, TensorElementType.Int32], file, errors);
        var attention = inputs.ContainsKey(AttentionMask);
        if (attention)
        {
            var maskType = Expect(inputs, AttentionMask, 2, [TensorElementType.Int64, TensorElementType.Int32], file, errors);
            if (ids is { } idsType && maskType is { } attentionType && idsType != attentionType)
            {
                errors.Add($"{file}: {AttentionMask}: dtype {DiffusersPipelineLoader.DtypeName(attentionType)}, but {InputIds} is {DiffusersPipelineLoader.DtypeName(idsType)}");
            }
        }

        var logits = Expect(session.OutputMetadata, Logits, 3, [TensorElementType.Float, TensorElementType.Float16], file, errors);
        if (errors.Count > 0)
        {
            return (null, errors);
        }

        var length = Agree(errors, "the sequence length", [
            ($"{file}: {InputIds} axis 1", Dim(inputs[InputIds], 1)),
            ($"{file}: {Logits} axis 1", Dim(session.OutputMetadata[Logits], 1)),
            ($"{GenerationConfigFile}: max_length", Int(generation, "max_length", GenerationConfigFile, errors))]);
        var vocabulary = Agree(errors, "the vocabulary size", [
            ($"{file}: {Logits} axis 2", Dim(session.OutputMetadata[Logits], 2)),
            ($"{ConfigFile}: vocab_size", Int(config, "vocab_size", ConfigFile, errors))]);
        if (length is null && errors.Count == 0)
        {
            errors.Add($"{GenerationConfigFile}: max_length: missing, and {file}'s {InputIds} leaves the sequence length dynamic (give the length searches run at)");
        }

        if (vocabulary is null && errors.Count == 0)
        {
            errors.Add($"{ConfigFile}: vocab_size: missing, and {file}'s {Logits} leaves the vocabulary dynamic");
        }

        if (vocabulary is { } v && (mask < 0 || mask >= v))
        {
            errors.Add($"mask_token_id: {mask} is outside the model's {v} logits");
        }

        var answer = Int(generation, "max_new_tokens", GenerationConfigFile, errors);
        if (answer is { } a && length is { } l && (a < 1 || a >= l))
        {
            errors.Add($"{GenerationConfigFile}: max_new_tokens: {a} must leave room for a prompt in the sequence of {l} (1 to {l - 1})");
        }

        var pad = Int(config, "pad_token_id", ConfigFile, errors) ?? Int(config, "eos_token_id", ConfigFile, errors)
            ?? Int(generation, "pad_token_id", GenerationConfigFile, errors) ?? Int(generation, "eos_token_id", GenerationConfigFile, errors);
        if (answer is not null && pad is null)
        {
            errors.Add($"{ConfigFile}: pad_token_id: missing (nor eos_token_id), but {GenerationConfigFile}'s max_new_tokens leaves positions after the answer to pad");
        }

        if (errors.Count > 0)
        {
            return (null, errors);
        }

        var modelType = Text(config, "model_type");
        var tensors = new TextModelTensors(ids!.Value, attention, logits!.Value, ShiftedModelTypes.Contains(modelType, StringComparer.OrdinalIgnoreCase));
        var description = new DenoiserDescription
        {
            Name = name,
            SampleShape = new SampleShape(length!.Value),
            Process = new MaskedProcess(length.Value, vocabulary!.Value, mask, text: new TextLayout(tokenizer, answer, pad)),
            Conditions = ConditionVocabulary.FreeText,
        };
        var manifest = new ModelManifest
        {
            Name = name,
            Kind = ManifestNames.Denoiser,
            Description = $"a diffusion LLM ({modelType ?? "unknown model_type"}) read from {ConfigFile}, {HuggingFaceTokenizer.FileName} and {file}",
            Process = ManifestNames.Masked,
            Prediction = ManifestNames.Logits,
            Inputs = new() { ["sample"] = new TensorSpec { Name = InputIds, Dtype = DiffusersPipelineLoader.DtypeName(ids.Value), Shape = [-1, length.Value] } },
            Outputs = new() { ["prediction"] = new TensorSpec { Name = Logits, Dtype = DiffusersPipelineLoader.DtypeName(logits.Value), Shape = [-1, length.Value, vocabulary.Value] } },
            Tokens = new TokenSpec { MaskId = mask },
        };
        return (new TextModel(description, tensors, manifest, session), errors);
    }

    private static TensorElementType? Expect(IReadOnlyDictionary<string, NodeMetadata> metadata, string tensor, int rank, TensorElementType[] dtypes, string file, List<string> errors)
    {
        if (!metadata.TryGetValue(tensor, out var m))
        {
            errors.Add($"{file}: {tensor}: missing (the graph has {string.Join(", ", metadata.Keys)})");
            return null;
        }

        if (m.Dimensions.Length != rank)
        {
            errors.Add($"{file}: {tensor}: rank {m.Dimensions.Length}, expected {rank}");
        }

        if (!dtypes.Contains(m.ElementDataType))
        {
            errors.Add($"{file}: {tensor}: dtype {DiffusersPipelineLoader.DtypeName(m.ElementDataType)}, expected {string.Join(" or ", dtypes.Select(DiffusersPipelineLoader.DtypeName))}");
        }

        return m.ElementDataType;
    }

    private static int? Dim(NodeMetadata m, int axis) => m.Dimensions.Length > axis && m.Dimensions[axis] > 0 ? m.Dimensions[axis] : null;

    private static int? Agree(List<string> errors, string what, (string Source, int? Value)[] sources)
    {
        var stated = sources.Where(s => s.Value is not null).ToList();
        if (stated.Select(s => s.Value).Distinct().Count() > 1)
        {
            errors.Add($"{stated[^1].Source}: {stated[^1].Value}, but {stated[0].Source} is {stated[0].Value} ({what} must agree)");
        }

        return stated.Count > 0 ? stated[0].Value : null;
    }

    // An id field; a list (transformers allows several eos ids) gives its first.
    private static int? Int(JsonElement? json, string field, string file, List<string> errors)
    {
        if (json is not { } j || !j.TryGetProperty(field, out var v) || v.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        var value = v.ValueKind == JsonValueKind.Array && v.GetArrayLength() > 0 ? v[0] : v;
        if (value.ValueKind == JsonValueKind.Number && value.TryGetInt32(out var i))
        {
            return i;
        }

        errors.Add($"{file}: {field}: must be an integer, got {v.GetRawText()}");
        return null;
    }

    private static string? Text(JsonElement? json, string field) =>
        json is { } j && j.TryGetProperty(field, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    private static JsonElement? ReadJson(string folder, string file, List<string> errors, bool required) =>
        ConfigJson.Read(folder, file, errors, required ? "missing" : null);
}

/// <summary>A text model read from its folder: what Core needs, how its tensors are bound, the manifest it amounts to, and its first session.</summary>
internal sealed record TextModel(DenoiserDescription Description, TextModelTensors Tensors, ModelManifest Manifest, InferenceSession Session);
