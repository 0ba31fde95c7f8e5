namespace SearchOrchestrator.Onnx.Manifests;

/// <summary>The words a manifest may use, in one place.</summary>
public static class ManifestNames
{
    /// <summary>The manifest's file name inside a model folder.</summary>
    public const string ManifestFileName = "model.json";

    /// <summary>The ONNX file's name inside a model folder.</summary>
    public const string ModelFileName = "model.onnx";

    /// <summary>Kind of a model that predicts noise, samples or velocity.</summary>
    public const string Denoiser = "denoiser";

    /// <summary>Kind of a model that scores x0-predictions.</summary>
    public const string Verifier = "verifier";

    /// <summary>The kind a folder in the diffusers ONNX layout is listed with (it has no manifest).</summary>
    public const string Pipeline = "pipeline";

    /// <summary>The gaussian (DDPM/DDIM) process.</summary>
    public const string Gaussian = "gaussian";

    /// <summary>The masked (absorbing-state discrete) process.</summary>
    public const string Masked = "masked";

    /// <summary>A masked denoiser's prediction: logits over the vocabulary per position.</summary>
    public const string Logits = "logits";

    /// <summary>Scoring rule: the softmax probability of the requested condition's class.</summary>
    public const string ClassProbability = "class-probability";

    /// <summary>Scoring rule: the log-softmax of the requested condition's class.</summary>
    public const string ClassLogProbability = "class-log-probability";

    /// <summary>Scoring rule: the model's single output value is the score (a regression verifier).</summary>
    public const string Scalar = "scalar";

    /// <summary>Scoring rule: minus the Euclidean distance from the model's output vector to the condition's target.</summary>
    public const string NegativeDistance = "negative-distance";

    /// <summary>Every scoring rule.</summary>
    public static readonly IReadOnlyList<string> ScoringRules = [ClassProbability, ClassLogProbability, Scalar, NegativeDistance];

    /// <summary>Prediction types by manifest word.</summary>
    public static readonly IReadOnlyDictionary<string, Processes.PredictionType> Predictions = new Dictionary<string, Processes.PredictionType>
    {
        ["epsilon"] = Processes.PredictionType.Epsilon,
        ["sample"] = Processes.PredictionType.Sample,
        ["v"] = Processes.PredictionType.V,
    };

    /// <summary>β schedules by manifest word.</summary>
    public static readonly IReadOnlyList<string> BetaSchedules = ["linear", "cosine"];

    /// <summary>Element types the runtime binds.</summary>
    public static readonly IReadOnlyList<string> Dtypes = ["float32", "int64"];
}
