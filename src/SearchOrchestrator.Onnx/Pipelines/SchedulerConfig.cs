using System.Globalization;
using System.Text.Json;
using SearchOrchestrator.Processes;

namespace SearchOrchestrator.Onnx.Pipelines;

/// <summary>
/// A diffusers <c>scheduler/scheduler_config.json</c> read as the training noise schedule and sampling spacing of a
/// <see cref="GaussianProcess"/>. Whatever the scheduler class (DDIM, PNDM, Euler …), the service samples with DDIM,
/// so a field the file leaves out takes <c>DDIMScheduler</c>'s default, as <c>DDIMScheduler.from_config</c> would.
/// </summary>
internal static class SchedulerConfig
{
    public const string File = "scheduler/scheduler_config.json";

    /// <summary>The process the config describes, or every field that is wrong.</summary>
    public static (GaussianProcess? Process, List<string> Errors) Read(string pipelineFolder)
    {
        var errors = new List<string>();
        var path = Path.Combine(pipelineFolder, "scheduler", "scheduler_config.json");
        if (!System.IO.File.Exists(path))
        {
            return (null, [$"{File}: missing"]);
        }

        JsonElement s;
        try
        {
            using var document = JsonDocument.Parse(System.IO.File.ReadAllText(path));
            s = document.RootElement.Clone();
        }
        catch (JsonException ex)
        {
            return (null, [$"{File}: {ex.Message}"]);
        }

        if (s.ValueKind != JsonValueKind.Object)
        {
            return (null, [$"{File}: not a JSON object"]);
        }

        void Fail(string field, string message) => errors.Add($"{File}: {field}: {message}");
        string Text(string field, string fallback) => Optional(s, field) switch
        {
            null => fallback,
            { ValueKind: JsonValueKind.String } v => v.GetString()!,
            var v => Fallback(() => Fail(field, $"must be a string, got {v}"), fallback),
        };
        double Number(string field, double fallback) => Optional(s, field) switch
        {
            null => fallback,
            { ValueKind: JsonValueKind.Number } v => v.GetDouble(),
            var v => Fallback(() => Fail(field, $"must be a number, got {v}"), fallback),
        };
        bool Flag(string field, bool fallback) => Optional(s, field) switch
        {
            null => fallback,
            { ValueKind: JsonValueKind.True } => true,
            { ValueKind: JsonValueKind.False } => false,
            var v => Fallback(() => Fail(field, $"must be true or false, got {v}"), fallback),
        };

        var trainingSteps = Number("num_train_timesteps", 1000);
        if (trainingSteps is < 1 or > 100_000 || trainingSteps != Math.Floor(trainingSteps))
        {
            Fail("num_train_timesteps", $"must be a whole number between 1 and 100000, got {trainingSteps.ToString(CultureInfo.InvariantCulture)}");
            trainingSteps = 1000;
        }

        var t = (int)trainingSteps;
        var betaStart = Number("beta_start", 0.0001);
        var betaEnd = Number("beta_end", 0.02);
        var betaSchedule = Text("beta_schedule", "linear");
        NoiseSchedule? schedule = null;
        try
        {
            if (Optional(s, "trained_betas") is { ValueKind: JsonValueKind.Array } trained)
            {
                var betas = trained.EnumerateArray().Select(b => b.GetDouble()).ToList();
                if (betas.Count != t)
                {
                    Fail("trained_betas", $"has {betas.Count} values for num_train_timesteps {t}");
                }
                else
                {
                    schedule = NoiseSchedule.Trained(betas);
                }
            }
            else
            {
                schedule = betaSchedule switch
                {
                    "linear" => NoiseSchedule.Linear(t, betaStart, betaEnd),
                    "scaled_linear" => NoiseSchedule.ScaledLinear(t, betaStart, betaEnd),
                    "squaredcos_cap_v2" => NoiseSchedule.Cosine(t),
                    _ => Fallback<NoiseSchedule?>(() => Fail("beta_schedule", $"'{betaSchedule}' is not one of linear, scaled_linear, squaredcos_cap_v2"), null),
                };
            }
        }
        catch (Exception ex) when (ex is ArgumentException or InvalidOperationException or FormatException)
        {
            Fail(Optional(s, "trained_betas") is { ValueKind: JsonValueKind.Array } ? "trained_betas" : "beta_start/beta_end", ex.Message);
        }

        var predictionName = Text("prediction_type", "epsilon");
        PredictionType? prediction = predictionName switch
        {
            "epsilon" => PredictionType.Epsilon,
            "v_prediction" => PredictionType.V,
            "sample" => PredictionType.Sample,
            _ => Fallback<PredictionType?>(() => Fail("prediction_type", $"'{predictionName}' is not one of epsilon, v_prediction, sample"), null),
        };
        var spacingName = Text("timestep_spacing", "leading");
        TimestepSpacingKind? kind = spacingName switch
        {
            "leading" => TimestepSpacingKind.Leading,
            "trailing" => TimestepSpacingKind.Trailing,
            "linspace" => TimestepSpacingKind.Linspace,
            _ => Fallback<TimestepSpacingKind?>(() => Fail("timestep_spacing", $"'{spacingName}' is not one of leading, trailing, linspace"), null),
        };
        var offset = Number("steps_offset", 0);
        if (offset < 0 || offset >= t || offset != Math.Floor(offset))
        {
            Fail("steps_offset", $"must be a whole number in [0, num_train_timesteps), got {offset.ToString(CultureInfo.InvariantCulture)}");
        }

        var alphaToOne = Flag("set_alpha_to_one", true);
        (float, float)? range = null;
        if (Flag("clip_sample", true))
        {
            var r = Number("clip_sample_range", 1.0);
            if (!(r > 0))
            {
                Fail("clip_sample_range", $"must be positive, got {r.ToString(CultureInfo.InvariantCulture)}");
            }

            range = ((float)-r, (float)r);
        }

        if (Flag("thresholding", false))
        {
            Fail("thresholding", "dynamic thresholding is not supported; set it to false");
        }

        if (errors.Count > 0 || schedule is null || prediction is null || kind is null)
        {
            return (null, errors);
        }

        var spacing = new TimestepSpacing { Kind = kind.Value, StepsOffset = (int)offset, FinalAlphaIsOne = alphaToOne };
        return (new GaussianProcess(schedule, prediction.Value, range, spacing), errors);
    }

    private static JsonElement? Optional(JsonElement json, string field) =>
        json.TryGetProperty(field, out var v) && v.ValueKind != JsonValueKind.Null ? v : null;

    private static T Fallback<T>(Action fail, T value)
    {
        fail();
        return value;
    }
}
