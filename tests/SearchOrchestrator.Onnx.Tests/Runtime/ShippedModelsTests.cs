using SearchOrchestrator.Denoising;
using SearchOrchestrator.Onnx.Manifests;
using SearchOrchestrator.Onnx.Repository;
using SearchOrchestrator.Tensors;
using SearchOrchestrator.Tests;
using SearchOrchestrator.Verifiers;

namespace SearchOrchestrator.Onnx.Tests.Runtime;

/// <summary>Every model in models/ loads and runs a real forward pass through ONNX Runtime.</summary>
public sealed class ShippedModelsTests(SharedRepository shared) : IClassFixture<SharedRepository>
{
    public static TheoryData<string> ShippedModels() =>
        [.. Directory.GetDirectories(RepositoryPaths.Models).Where(d => File.Exists(Path.Combine(d, "model.json"))).Select(d => Path.GetFileName(d)!)];

    [Theory]
    [MemberData(nameof(ShippedModels))]
    public async Task ForwardPass_ShippedModel_ReturnsFiniteOutputs(string name)
    {
        var entry = shared.Repository.Models.Single(m => m.Name == name);
        Assert.True(entry.IsReady, entry.Error);
        var sampleShape = new SampleShape(entry.Manifest!.Inputs!["sample"].Shape![1..]);
        var input = Enumerable.Range(0, 2 * sampleShape.ElementCount).Select(i => (float)Math.Sin(i)).ToArray();

        float[] output;
        if (entry.Kind == ManifestNames.Denoiser)
        {
            var denoiser = shared.Repository.GetDenoiser(name);
            var conditions = denoiser.Description.Conditions;
            var id = conditions.IsFreeText ? 0 : conditions.Resolve(conditions.Labels[0], name);
            output = new float[2 * denoiser.Description.OutputElements]; // sin(i) as token ids truncates to 0: masked tokens
            await denoiser.PredictAsync(new DenoiserBatch(2, input, new float[] { 500, 20 }, new[] { id, id }), output);
            Assert.Contains(output, v => v != 0);
        }
        else
        {
            var label = entry.Manifest.Scoring!.Labels![0];
            // A noise-aware verifier (an inputs.time) scores each sample at its time: one nearly clean, one mid-way.
            var times = entry.Manifest.Inputs!.ContainsKey("time") ? new float[] { 20, 500 } : ReadOnlyMemory<float>.Empty;
            output = await shared.Repository.GetVerifier(name).ScoreAsync(new VerifierBatch(sampleShape, input, [label, label]) { Times = times });
            if (entry.Manifest.Scoring.Rule == ManifestNames.ClassProbability)
            {
                Assert.All(output, v => Assert.InRange(v, 0f, 1f));
            }
        }

        Assert.All(output, v => Assert.True(float.IsFinite(v)));
    }
}
