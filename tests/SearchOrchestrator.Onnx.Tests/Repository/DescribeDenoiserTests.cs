using SearchOrchestrator.Onnx.Manifests;
using SearchOrchestrator.Processes;
using System.Text.Json;
using SearchOrchestrator.Onnx.Repository;
using SearchOrchestrator.Onnx.Runtime;
using SearchOrchestrator.Tests;

namespace SearchOrchestrator.Onnx.Tests.Repository;

/// <summary>Describing a denoiser from its manifest alone, and a verifier's raw outputs, for remote backends.</summary>
public sealed class DescribeDenoiserTests(SharedRepository shared) : IClassFixture<SharedRepository>
{
    private static ModelManifest Shipped(string model) =>
        JsonSerializer.Deserialize<ModelManifest>(File.ReadAllText(Path.Combine(RepositoryPaths.Models, model, "model.json")), ModelManifest.SerializerOptions)!;

    [Fact]
    public void DescribeDenoiser_ShippedManifest_DescribesWhatTheLoadedModelDoes()
    {
        var described = ModelRepository.DescribeDenoiser("counting", Shipped("counting"));
        var loaded = shared.Repository.GetDenoiser("counting").Description;

        Assert.Equal(loaded.SampleShape, described.SampleShape);
        Assert.Equal(loaded.Conditions.Labels, described.Conditions.Labels);
        Assert.Equal(loaded.Conditions.NullId, described.Conditions.NullId);
        Assert.Equal(((GaussianProcess)loaded.Process).Prediction, ((GaussianProcess)described.Process).Prediction);
    }

    [Fact]
    public void DescribeDenoiser_VerifierOrBrokenManifest_NamesTheFields()
    {
        var verifier = Assert.Throws<ArgumentException>(() => ModelRepository.DescribeDenoiser("count-verifier", Shipped("count-verifier")));
        var broken = Assert.Throws<ArgumentException>(() => ModelRepository.DescribeDenoiser("counting", Shipped("counting") with { Schedule = null }));

        Assert.Contains("kind: 'verifier' is not a denoiser", verifier.Message, StringComparison.Ordinal);
        Assert.Contains("model 'counting': schedule", broken.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RunAsync_Verifier_WritesRawRowsWhoseSoftmaxIsTheScore()
    {
        var verifier = shared.Repository.GetVerifier("count-verifier");
        var model = Assert.IsAssignableFrom<IVerifierModel>(verifier);
        var sample = Enumerable.Range(0, 576).Select(i => (i % 7) / 7f).ToArray();
        var rows = new float[model.OutputWidth];

        await model.RunAsync(sample, 1, rows);
        var score = (await verifier.ScoreAsync(new Verifiers.VerifierBatch(model.SampleShape, sample, ["3"])))[0];

        Assert.Equal(11, model.OutputWidth);
        var max = rows.Max();
        Assert.Equal(score, Math.Exp(rows[3] - max) / rows.Sum(v => Math.Exp(v - max)), 5);
    }
}
