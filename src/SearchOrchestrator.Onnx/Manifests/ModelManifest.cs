using System.Text.Json;
using System.Text.Json.Serialization;

namespace SearchOrchestrator.Onnx.Manifests;

/// <summary>
/// <c>models/&lt;name&gt;/model.json</c>: what the ONNX file beside it is and how to drive it, in the spirit of
/// Triton's model configuration. Every property is nullable so validation can name each missing field.
/// </summary>
public sealed record ModelManifest
{
    /// <summary>The model's name; must equal its folder's name.</summary>
    public string? Name { get; init; }

    /// <summary><c>denoiser</c> or <c>verifier</c>.</summary>
    public string? Kind { get; init; }

    /// <summary>One line for people.</summary>
    public string? Description { get; init; }

    /// <summary>Denoisers: the process, <c>gaussian</c> or <c>masked</c>.</summary>
    public string? Process { get; init; }

    /// <summary>Denoisers: <c>epsilon</c>, <c>sample</c> or <c>v</c> (gaussian); <c>logits</c> (masked).</summary>
    public string? Prediction { get; init; }

    /// <summary>
    /// Input tensors by role: denoisers <c>sample</c>, <c>time</c>, <c>condition</c>; verifiers <c>sample</c> and, for a
    /// verifier that reads the prompt, <c>prompt</c> (its token ids, int64 <c>[-1, length]</c>).
    /// </summary>
    public Dictionary<string, TensorSpec>? Inputs { get; init; }

    /// <summary>Output tensors by role: denoisers <c>prediction</c>; verifiers <c>output</c>.</summary>
    public Dictionary<string, TensorSpec>? Outputs { get; init; }

    /// <summary>Denoisers: the training noise schedule.</summary>
    public ScheduleSpec? Schedule { get; init; }

    /// <summary>Masked denoisers: the token vocabulary and the mask id.</summary>
    public TokenSpec? Tokens { get; init; }

    /// <summary>Denoisers: the condition vocabulary and null id (gaussian; masked models take a token prompt instead).</summary>
    public ConditionSpec? Condition { get; init; }

    /// <summary>Denoisers: the range of clean samples, <c>[min, max]</c>; x̂0 is clipped to it.</summary>
    public float[]? SampleRange { get; init; }

    /// <summary>Verifiers: how logits become a score.</summary>
    public ScoringSpec? Scoring { get; init; }

    /// <summary>
    /// Verifiers with a <c>prompt</c> input: the folder of the tokenizer that turns each sample's condition (the prompt)
    /// into its token ids, relative to the manifest's folder (a CLIP BPE folder: <c>vocab.json</c>, <c>merges.txt</c>).
    /// </summary>
    public string? Tokenizer { get; init; }

    /// <summary>Lower-case hex SHA-256 of <c>model.onnx</c>.</summary>
    public string? Sha256 { get; init; }

    /// <summary>How the model was trained (script, seed, steps, measured results); informational.</summary>
    public JsonElement? Training { get; init; }

    /// <summary>The JSON options manifests are read with.</summary>
    public static JsonSerializerOptions SerializerOptions { get; } = new(JsonSerializerDefaults.Web)
    {
        ReadCommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
    };
}

/// <summary>One tensor: its name in the ONNX graph, element type and shape (-1 for a dynamic axis).</summary>
public sealed record TensorSpec
{
    /// <summary>The graph's input or output name.</summary>
    public string? Name { get; init; }

    /// <summary><c>float32</c> or <c>int64</c>.</summary>
    public string? Dtype { get; init; }

    /// <summary>Dimensions; axis 0 is the batch and must be -1.</summary>
    public int[]? Shape { get; init; }
}

/// <summary>A masked denoiser's tokens: the text of each id (in id order) and which id is the mask.</summary>
public sealed record TokenSpec
{
    /// <summary>The text of each token id; its length is the vocabulary size V (the logits per position).</summary>
    public string[]? Vocabulary { get; init; }

    /// <summary>The mask token's id, in [0, V).</summary>
    public int? MaskId { get; init; }
}

/// <summary>A training noise schedule.</summary>
public sealed record ScheduleSpec
{
    /// <summary><c>linear</c> or <c>cosine</c>.</summary>
    public string? Beta { get; init; }

    /// <summary>T, the number of training steps.</summary>
    public int? TrainingSteps { get; init; }

    /// <summary>Linear: the first β.</summary>
    public double? BetaStart { get; init; }

    /// <summary>Linear: the last β.</summary>
    public double? BetaEnd { get; init; }
}

/// <summary>The condition labels a denoiser understands and the ids its network takes.</summary>
public sealed record ConditionSpec
{
    /// <summary>Label → id, in the order shown to users.</summary>
    public Dictionary<string, long>? Vocabulary { get; init; }

    /// <summary>The id of the null condition for classifier-free guidance, if the model has one.</summary>
    public long? NullId { get; init; }
}

/// <summary>A verifier's scoring rule: how its output becomes a score (higher is better).</summary>
public sealed record ScoringSpec
{
    /// <summary>
    /// <c>class-probability</c> or <c>class-log-probability</c> (of the class matching the condition, from logits);
    /// <c>scalar</c> (the single output value); <c>negative-distance</c> (−‖output − target of the condition‖).
    /// </summary>
    public string? Rule { get; init; }

    /// <summary>Class rules: the condition label of each logit, in output order.</summary>
    public string[]? Labels { get; init; }

    /// <summary><c>negative-distance</c>: the target output vector of each condition label.</summary>
    public Dictionary<string, float[]>? Targets { get; init; }
}
