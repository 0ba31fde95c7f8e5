using System.Text.Json;
using SearchOrchestrator.Onnx.Manifests;
using SearchOrchestrator.Onnx.Repository;
using SearchOrchestrator.Tests;

namespace SearchOrchestrator.Onnx.Tests.Repository;

public sealed class ManifestValidatorTests
{
    private static ModelManifest Shipped(string model) =>
        JsonSerializer.Deserialize<ModelManifest>(File.ReadAllText(Path.Combine(RepositoryPaths.Models, model, "model.json")), ModelManifest.SerializerOptions)!;

    [Theory]
    [InlineData("counting")]
    [InlineData("count-verifier")]
    [InlineData("sudoku")]
    public void Validate_ShippedManifests_HaveNoErrors(string model)
    {
        Assert.Empty(ManifestValidator.Validate(Shipped(model), model));
    }

    [Fact]
    public void Validate_MaskedDenoiserWithoutTokens_NamesTheMissingVocabulary()
    {
        var errors = ManifestValidator.Validate(Shipped("sudoku") with { Tokens = null }, "sudoku");

        Assert.Equal(["tokens: missing (vocabulary: the text of each token id, and maskId)"], errors);
    }

    [Fact]
    public void Validate_MaskedDenoiserWithBadMaskAndLogitsShape_NamesBoth()
    {
        var shipped = Shipped("sudoku");
        var manifest = shipped with
        {
            Tokens = shipped.Tokens! with { MaskId = 10 },
            Outputs = new() { ["prediction"] = new TensorSpec { Name = "logits", Dtype = "float32", Shape = [-1, 81, 9] } },
        };

        var errors = ManifestValidator.Validate(manifest, "sudoku");

        Assert.Equal(
            [
                "tokens.maskId: must be an id in [0, 10), got 10",
                "outputs.prediction.shape: logits must be [-1, 81, 10] (length x vocabulary), got [-1, 81, 9]",
            ],
            errors);
    }

    [Fact]
    public void Validate_EmptyDenoiser_NamesEveryMissingField()
    {
        var errors = ManifestValidator.Validate(new ModelManifest { Kind = "denoiser" }, "x");

        Assert.Equal(
            [
                "name: missing",
                "sha256: missing (the SHA-256 of model.onnx, 64 lower-case hex digits)",
                "process: missing (gaussian or masked)",
                "prediction: missing one of epsilon, sample, v",
                "inputs.sample: missing",
                "inputs.time: missing",
                "outputs.prediction: missing",
                "inputs.condition: missing",
                "condition: missing (vocabulary: label → id, and nullId for guidance)",
                "schedule: missing (beta, trainingSteps, betaStart, betaEnd)",
            ],
            errors);
    }

    [Fact]
    public void Validate_WrongValues_SayWhatWasExpected()
    {
        var manifest = Shipped("counting") with
        {
            Name = "other",
            Kind = "denoiser",
            Prediction = "noise",
            Sha256 = "ABC",
            Schedule = new ScheduleSpec { Beta = "linear", TrainingSteps = 0, BetaStart = 0.02, BetaEnd = 0.0001 },
            SampleRange = [1f, -1f],
        };

        var errors = ManifestValidator.Validate(manifest, "counting");

        Assert.Contains("name: 'other' must equal the folder name 'counting'", errors);
        Assert.Contains("sha256: 'ABC' is not 64 lower-case hex digits", errors);
        Assert.Contains("prediction: 'noise' is not one of epsilon, sample, v", errors);
        Assert.Contains("schedule.trainingSteps: must be a positive integer, got 0", errors);
        Assert.Contains("schedule.betaStart/betaEnd: a linear schedule needs 0 < betaStart <= betaEnd < 1, got 0.02 and 0.0001", errors);
        Assert.Contains("sampleRange: must be [min, max] with min < max, got [1, -1]", errors);
    }

    [Fact]
    public void Validate_FixedBatchAxis_IsRejected()
    {
        var shipped = Shipped("count-verifier");
        var manifest = shipped with
        {
            Inputs = new() { ["sample"] = shipped.Inputs!["sample"] with { Shape = [4, 1, 24, 24] } },
        };

        var errors = ManifestValidator.Validate(manifest, "count-verifier");

        Assert.Equal(["inputs.sample.shape: axis 0 is the batch and must be -1 (dynamic), got 4"], errors);
    }

    [Fact]
    public void Validate_UnknownKindAndRule_AreNamed()
    {
        Assert.Contains("kind: 'classifier' is not denoiser or verifier", ManifestValidator.Validate(Shipped("count-verifier") with { Kind = "classifier" }, "count-verifier"));
        Assert.Contains("scoring.rule: 'max' is not one of class-probability, class-log-probability, scalar, negative-distance", ManifestValidator.Validate(Shipped("count-verifier") with { Scoring = new ScoringSpec { Rule = "max" } }, "count-verifier"));
        Assert.Contains("scoring.labels: 1 labels for 11 logits", ManifestValidator.Validate(Shipped("count-verifier") with { Scoring = new ScoringSpec { Rule = "class-probability", Labels = ["1"] } }, "count-verifier"));
    }

    [Fact]
    public void Validate_RegressionRules_CheckTheOutputWidth()
    {
        var shipped = Shipped("count-verifier");

        Assert.Contains(
            "outputs.output.shape: a scalar verifier outputs one value per sample, [-1, 1], got width 11",
            ManifestValidator.Validate(shipped with { Scoring = new ScoringSpec { Rule = "scalar" } }, "count-verifier"));
        Assert.Contains(
            "scoring.targets.up: 2 values for an output of width 11",
            ManifestValidator.Validate(shipped with { Scoring = new ScoringSpec { Rule = "negative-distance", Targets = new() { ["up"] = [1f, 0f] } } }, "count-verifier"));
        Assert.Contains(
            "scoring.targets: missing or empty (the target output vector of each condition label)",
            ManifestValidator.Validate(shipped with { Scoring = new ScoringSpec { Rule = "negative-distance" } }, "count-verifier"));
    }
}
