using System.Text.RegularExpressions;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using SearchOrchestrator.Onnx.Manifests;

namespace SearchOrchestrator.Onnx.Repository;

/// <summary>
/// Checks a manifest on its own, then against the ONNX model's declared inputs and outputs. Every problem is
/// collected and named by its JSON path (<c>inputs.sample.shape</c>), with what was expected and what was found.
/// </summary>
public static partial class ManifestValidator
{
    /// <summary>Checks the manifest's own fields; <paramref name="folderName"/> is the model's folder.</summary>
    public static IReadOnlyList<string> Validate(ModelManifest manifest, string folderName)
    {
        ArgumentNullException.ThrowIfNull(manifest);
        var errors = new List<string>();
        if (string.IsNullOrEmpty(manifest.Name))
        {
            errors.Add("name: missing");
        }
        else if (manifest.Name != folderName)
        {
            errors.Add($"name: '{manifest.Name}' must equal the folder name '{folderName}'");
        }

        if (manifest.Sha256 is null)
        {
            errors.Add("sha256: missing (the SHA-256 of model.onnx, 64 lower-case hex digits)");
        }
        else if (!Sha256Pattern().IsMatch(manifest.Sha256))
        {
            errors.Add($"sha256: '{manifest.Sha256}' is not 64 lower-case hex digits");
        }

        switch (manifest.Kind)
        {
            case ManifestNames.Denoiser:
                ValidateDenoiser(manifest, errors);
                if (manifest.Tokenizer is not null)
                {
                    errors.Add("tokenizer: only a verifier with inputs.prompt takes a tokenizer");
                }

                break;
            case ManifestNames.Verifier:
                ValidateVerifier(manifest, errors);
                break;
            case null:
                errors.Add($"kind: missing ({ManifestNames.Denoiser} or {ManifestNames.Verifier})");
                break;
            default:
                errors.Add($"kind: '{manifest.Kind}' is not {ManifestNames.Denoiser} or {ManifestNames.Verifier}");
                break;
        }

        return errors;
    }

    /// <summary>Checks that every declared tensor exists in the ONNX model with the declared dtype and shape, and that the model needs no undeclared input.</summary>
    public static IReadOnlyList<string> ValidateAgainstModel(ModelManifest manifest, InferenceSession session)
    {
        ArgumentNullException.ThrowIfNull(manifest);
        ArgumentNullException.ThrowIfNull(session);
        var errors = new List<string>();
        Compare("inputs", manifest.Inputs, session.InputMetadata, errors);
        Compare("outputs", manifest.Outputs, session.OutputMetadata, errors);
        var declared = manifest.Inputs?.Values.Select(t => t.Name).ToHashSet() ?? [];
        foreach (var name in session.InputMetadata.Keys.Where(n => !declared.Contains(n)))
        {
            errors.Add($"inputs: model.onnx has an input '{name}' that the manifest does not declare");
        }

        return errors;
    }

    private static void Compare(string section, Dictionary<string, TensorSpec>? specs, IReadOnlyDictionary<string, NodeMetadata> metadata, List<string> errors)
    {
        foreach (var (role, spec) in specs ?? [])
        {
            if (spec.Name is null || spec.Dtype is null || spec.Shape is null)
            {
                continue; // already reported by Validate
            }

            if (!metadata.TryGetValue(spec.Name, out var node))
            {
                errors.Add($"{section}.{role}.name: model.onnx has no {section[..^1]} '{spec.Name}' (it has: {string.Join(", ", metadata.Keys)})");
                continue;
            }

            var actualType = DtypeOf(node.ElementDataType);
            if (actualType != spec.Dtype)
            {
                errors.Add($"{section}.{role}.dtype: the manifest says {spec.Dtype} but model.onnx declares {actualType}");
            }

            var actualShape = node.Dimensions;
            if (!ShapesAgree(spec.Shape, actualShape))
            {
                errors.Add($"{section}.{role}.shape: the manifest says [{string.Join(", ", spec.Shape)}] but model.onnx declares [{string.Join(", ", actualShape)}]");
            }
        }
    }

    /// <summary>
    /// Same rank, and every axis agrees: equal sizes, or an axis the ONNX graph leaves symbolic (-1) that the
    /// manifest pins to a size. An axis the manifest calls dynamic must be dynamic in the graph too.
    /// </summary>
    private static bool ShapesAgree(int[] declared, int[] actual)
    {
        if (declared.Length != actual.Length)
        {
            return false;
        }

        for (var i = 0; i < declared.Length; i++)
        {
            if (actual[i] != -1 && actual[i] != declared[i])
            {
                return false;
            }
        }

        return true;
    }

    private static string DtypeOf(TensorElementType type) => type switch
    {
        TensorElementType.Float => "float32",
        TensorElementType.Int64 => "int64",
        _ => type.ToString().ToLowerInvariant(),
    };

    private static void ValidateDenoiser(ModelManifest m, List<string> errors)
    {
        if (m.Process == ManifestNames.Masked)
        {
            ValidateMaskedDenoiser(m, errors);
            return;
        }

        if (m.Process != ManifestNames.Gaussian)
        {
            errors.Add(m.Process is null ? "process: missing (gaussian or masked)" : $"process: '{m.Process}' is not supported (gaussian or masked)");
        }

        if (m.Prediction is null || !ManifestNames.Predictions.ContainsKey(m.Prediction))
        {
            errors.Add($"prediction: {(m.Prediction is null ? "missing" : $"'{m.Prediction}' is not")} one of {string.Join(", ", ManifestNames.Predictions.Keys)}");
        }

        var sample = RequireTensor(m.Inputs, "inputs", "sample", "float32", errors);
        RequireTensor(m.Inputs, "inputs", "time", "float32", errors);
        var prediction = RequireTensor(m.Outputs, "outputs", "prediction", "float32", errors);
        if (sample?.Shape is { } s && prediction?.Shape is { } p && !s.AsSpan().SequenceEqual(p))
        {
            errors.Add($"outputs.prediction.shape: [{string.Join(", ", p)}] must equal inputs.sample.shape [{string.Join(", ", s)}]");
        }

        RequireTensor(m.Inputs, "inputs", "condition", "int64", errors);
        if (m.Condition is not { } condition)
        {
            errors.Add("condition: missing (vocabulary: label → id, and nullId for guidance)");
        }
        else
        {
            if (condition.Vocabulary is not { Count: > 0 })
            {
                errors.Add("condition.vocabulary: missing or empty (label → id)");
            }
            else if (condition.NullId is { } nullId && condition.Vocabulary.ContainsValue(nullId))
            {
                errors.Add($"condition.nullId: {nullId} is also the id of a label");
            }
        }

        if (m.Schedule is not { } schedule)
        {
            errors.Add("schedule: missing (beta, trainingSteps, betaStart, betaEnd)");
        }
        else
        {
            if (schedule.Beta is null || !ManifestNames.BetaSchedules.Contains(schedule.Beta))
            {
                errors.Add($"schedule.beta: {(schedule.Beta is null ? "missing" : $"'{schedule.Beta}' is not")} one of {string.Join(", ", ManifestNames.BetaSchedules)}");
            }

            if (schedule.TrainingSteps is not > 0)
            {
                errors.Add($"schedule.trainingSteps: must be a positive integer, got {schedule.TrainingSteps?.ToString() ?? "nothing"}");
            }

            if (schedule.Beta == "linear" && !(schedule.BetaStart is > 0 && schedule.BetaEnd is < 1 && schedule.BetaStart <= schedule.BetaEnd))
            {
                errors.Add($"schedule.betaStart/betaEnd: a linear schedule needs 0 < betaStart <= betaEnd < 1, got {schedule.BetaStart?.ToString() ?? "nothing"} and {schedule.BetaEnd?.ToString() ?? "nothing"}");
            }
        }

        if (m.SampleRange is { } range && (range.Length != 2 || !(range[0] < range[1])))
        {
            errors.Add($"sampleRange: must be [min, max] with min < max, got [{string.Join(", ", range)}]");
        }
    }

    private static void ValidateMaskedDenoiser(ModelManifest m, List<string> errors)
    {
        if (m.Prediction != ManifestNames.Logits)
        {
            errors.Add($"prediction: a masked denoiser predicts {ManifestNames.Logits}, got {m.Prediction ?? "nothing"}");
        }

        var sample = RequireTensor(m.Inputs, "inputs", "sample", "int64", errors);
        RequireTensor(m.Inputs, "inputs", "time", "float32", errors);
        var prediction = RequireTensor(m.Outputs, "outputs", "prediction", "float32", errors);
        if (sample?.Shape is { Length: not 2 } s)
        {
            errors.Add($"inputs.sample.shape: a masked denoiser takes token ids [-1, length], got [{string.Join(", ", s)}]");
        }

        if (m.Inputs?.ContainsKey("condition") == true)
        {
            errors.Add("inputs.condition: a masked denoiser takes its prompt as clamped tokens, not a condition input");
        }

        if (m.Tokens is not { } tokens)
        {
            errors.Add("tokens: missing (vocabulary: the text of each token id, and maskId)");
            return;
        }

        if (tokens.Vocabulary is not { Length: >= 2 } vocabulary)
        {
            errors.Add("tokens.vocabulary: missing or shorter than 2 (the text of each token id, the mask's included)");
            return;
        }

        if (vocabulary.Distinct(StringComparer.Ordinal).Count() != vocabulary.Length)
        {
            errors.Add("tokens.vocabulary: an entry appears twice");
        }

        if (tokens.MaskId is not { } mask || mask < 0 || mask >= vocabulary.Length)
        {
            errors.Add($"tokens.maskId: must be an id in [0, {vocabulary.Length}), got {tokens.MaskId?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "nothing"}");
        }

        if (sample?.Shape is [_, var length] && prediction?.Shape is { } p && !p.AsSpan().SequenceEqual([-1, length, vocabulary.Length]))
        {
            errors.Add($"outputs.prediction.shape: logits must be [-1, {length}, {vocabulary.Length}] (length x vocabulary), got [{string.Join(", ", p)}]");
        }
    }

    private static void ValidateVerifier(ModelManifest m, List<string> errors)
    {
        RequireTensor(m.Inputs, "inputs", "sample", "float32", errors);
        if (m.Inputs?.ContainsKey("time") == true && RequireTensor(m.Inputs, "inputs", "time", "float32", errors)?.Shape is { Length: not 1 } timeShape)
        {
            errors.Add($"inputs.time.shape: a noise-aware verifier takes one time per sample, [-1], got [{string.Join(", ", timeShape)}]");
        }

        if (m.Inputs?.ContainsKey("prompt") == true)
        {
            var prompt = RequireTensor(m.Inputs, "inputs", "prompt", "int64", errors);
            if (prompt?.Shape is { Length: not 2 } promptShape)
            {
                errors.Add($"inputs.prompt.shape: a prompt is token ids [-1, length], got [{string.Join(", ", promptShape)}]");
            }

            if (string.IsNullOrEmpty(m.Tokenizer))
            {
                errors.Add("tokenizer: missing (a verifier with inputs.prompt names the folder of its tokenizer, relative to model.json)");
            }

            if (m.Inputs.ContainsKey("time"))
            {
                errors.Add("inputs.time: a verifier with inputs.prompt does not take a time input (not supported yet)");
            }
        }
        else if (m.Tokenizer is not null)
        {
            errors.Add("tokenizer: only a verifier with inputs.prompt takes a tokenizer");
        }

        var output = RequireTensor(m.Outputs, "outputs", "output", "float32", errors);
        var width = output?.Shape is [_, var w] ? w : (int?)null;
        if (output?.Shape is { Length: not 2 } shape)
        {
            errors.Add($"outputs.output.shape: must be [-1, width], got [{string.Join(", ", shape)}]");
        }

        if (m.Scoring is not { } scoring)
        {
            errors.Add($"scoring: missing (rule: one of {string.Join(", ", ManifestNames.ScoringRules)})");
            return;
        }

        switch (scoring.Rule)
        {
            case ManifestNames.ClassProbability or ManifestNames.ClassLogProbability:
                if (scoring.Labels is not { Length: > 0 })
                {
                    errors.Add("scoring.labels: missing or empty (the condition label of each logit)");
                }
                else if (width is { } classes && classes != scoring.Labels.Length)
                {
                    errors.Add($"scoring.labels: {scoring.Labels.Length} labels for {classes} logits");
                }

                break;
            case ManifestNames.Scalar:
                if (width is { } values && values != 1)
                {
                    errors.Add($"outputs.output.shape: a scalar verifier outputs one value per sample, [-1, 1], got width {values}");
                }

                break;
            case ManifestNames.NegativeDistance:
                if (scoring.Targets is not { Count: > 0 })
                {
                    errors.Add("scoring.targets: missing or empty (the target output vector of each condition label)");
                }
                else
                {
                    foreach (var (label, target) in scoring.Targets.Where(t => width is { } d && t.Value.Length != d))
                    {
                        errors.Add($"scoring.targets.{label}: {target.Length} values for an output of width {width}");
                    }
                }

                break;
            default:
                errors.Add($"scoring.rule: {(scoring.Rule is null ? "missing" : $"'{scoring.Rule}' is not")} one of {string.Join(", ", ManifestNames.ScoringRules)}");
                break;
        }
    }

    private static TensorSpec? RequireTensor(Dictionary<string, TensorSpec>? tensors, string section, string role, string dtype, List<string> errors)
    {
        if (tensors is null || !tensors.TryGetValue(role, out var spec))
        {
            errors.Add($"{section}.{role}: missing");
            return null;
        }

        var path = $"{section}.{role}";
        if (string.IsNullOrEmpty(spec.Name))
        {
            errors.Add($"{path}.name: missing");
        }

        if (spec.Dtype != dtype)
        {
            errors.Add($"{path}.dtype: must be {dtype}, got {spec.Dtype ?? "nothing"}");
        }

        if (spec.Shape is not { Length: > 0 } shape)
        {
            errors.Add($"{path}.shape: missing");
        }
        else if (shape[0] != -1)
        {
            errors.Add($"{path}.shape: axis 0 is the batch and must be -1 (dynamic), got {shape[0]}");
        }
        else if (shape.Skip(1).Any(d => d < 1))
        {
            errors.Add($"{path}.shape: every axis after the batch must be fixed (>= 1), got [{string.Join(", ", shape)}]");
        }

        return spec;
    }

    [GeneratedRegex("^[0-9a-f]{64}$")]
    private static partial Regex Sha256Pattern();
}
