using Microsoft.ML.OnnxRuntime;
using SearchOrchestrator.Denoising;
using SearchOrchestrator.Processes;
using SearchOrchestrator.Tests;

namespace SearchOrchestrator.Onnx.Tests.Pipelines;

/// <summary>
/// The shipped shapes-t2i family through the repository's diffusers-layout loader: the scheduler config becomes SD
/// 1.x's DDIM schedule, and each stage gives what its ONNX file gives when run directly with the Python tokenizer's ids
/// (the decoder after dividing by the family's scaling factor).
/// </summary>
public sealed class ShapesT2iPipelineTests(SharedRepository shared) : IClassFixture<SharedRepository>
{
    private static readonly string Family = Path.Combine(RepositoryPaths.Models, "shapes-t2i");

    // clip_bpe.Tokenizer.encode("two red circles") for the family's tokenizer (see shapes-t2i-token-ids.json).
    private static readonly int[] TwoRedCircles = [572, 547, 533, 544, 573, 573, 573, 573, 573, 573, 573, 573, 573, 573, 573, 573];

    [Fact]
    public void GetPipeline_ShapesT2i_HasTheFamilysShapesScheduleAndScalingFactor()
    {
        var pipeline = shared.Repository.GetPipeline("shapes-t2i");
        var process = Assert.IsType<GaussianProcess>(pipeline.Denoiser.Description.Process);
        var steps = process.Steps(50);

        Assert.Equal((16, 64), (pipeline.TextEncoder.Description.SequenceLength, pipeline.TextEncoder.Description.HiddenSize));
        Assert.Equal([4, 16, 16], pipeline.Denoiser.Description.SampleShape.Dimensions);
        Assert.Equal([3, 32, 32], pipeline.Decoder.Description.ImageShape.Dimensions);
        Assert.Equal(ConfigScalingFactor(), pipeline.Decoder.Description.ScalingFactor);
        Assert.Equal((PredictionType.Epsilon, ((float, float)?)null), (process.Prediction, process.SampleRange));
        Assert.Equal(NoiseSchedule.ScaledLinear(1000, 0.00085, 0.012).Betas, process.Schedule.Betas);
        Assert.Equal((981, 961, 1), (steps.TimestepAt(0), steps.TimestepAt(1), steps.TimestepAt(49))); // leading, steps_offset 1
        Assert.Equal(process.Schedule.AlphaBar(0), steps.AlphaBarAt(50)); // set_alpha_to_one false
        Assert.Equal(["float32", "float32", "float32"], pipeline.Stages.Select(s => s.Dtype));
    }

    [Fact]
    public async Task Stages_PromptThroughEveryStage_MatchTheOnnxFilesRunDirectly()
    {
        var pipeline = shared.Repository.GetPipeline("shapes-t2i");
        var embeddings = new float[2 * 16 * 64];
        var latents = Enumerable.Range(0, 2 * 4 * 16 * 16).Select(i => (float)Math.Sin(i)).ToArray();
        var prediction = new float[latents.Length];
        var images = new float[2 * 3 * 32 * 32];

        await pipeline.TextEncoder.EncodeAsync(["two red circles", string.Empty], embeddings);
        await pipeline.Denoiser.PredictAsync(new PromptDenoiserBatch(2, latents, new float[] { 801, 801 }, embeddings), prediction);
        await pipeline.Decoder.DecodeAsync(2, latents, images);

        var ids = TwoRedCircles.Concat(new[] { 572 }.Concat(Enumerable.Repeat(573, 15))).ToArray();
        var expectedStates = Run("text_encoder", "last_hidden_state", ("input_ids", OrtValue.CreateTensorValueFromMemory(ids, [2, 16])));
        var expectedPrediction = Run("unet", "out_sample",
            ("sample", OrtValue.CreateTensorValueFromMemory(latents, [2, 4, 16, 16])),
            ("timestep", OrtValue.CreateTensorValueFromMemory(new float[] { 801, 801 }, [2])),
            ("encoder_hidden_states", OrtValue.CreateTensorValueFromMemory(expectedStates, [2, 16, 64])));
        var unscaled = latents.Select(v => (float)(v / ConfigScalingFactor())).ToArray();
        var expectedImages = Run("vae_decoder", "sample", ("latent_sample", OrtValue.CreateTensorValueFromMemory(unscaled, [2, 4, 16, 16])));
        Assert.Equal(TwoRedCircles, pipeline.Tokenizer.Encode("two red circles"));
        // The repository's sessions set their own thread counts, which may change a sum's order: the last bit may differ.
        AssertClose(expectedStates, embeddings);
        AssertClose(expectedPrediction, prediction);
        AssertClose(expectedImages, images);
    }

    // The factor the training script measured for these weights (1 / std of the latents), as vae_decoder/config.json records it.
    private static double ConfigScalingFactor()
    {
        using var config = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(Family, "vae_decoder", "config.json")));
        return config.RootElement.GetProperty("scaling_factor").GetDouble();
    }

    private static void AssertClose(float[] expected, float[] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        var worst = expected.Zip(actual, (e, a) => Math.Abs(e - a)).Max();
        Assert.True(worst <= 1e-5, $"largest difference {worst}");
    }

    private static float[] Run(string stage, string output, params (string Name, OrtValue Value)[] inputs)
    {
        try
        {
            using var session = new InferenceSession(Path.Combine(Family, stage, "model.onnx"));
            using var options = new RunOptions();
            using var results = session.Run(options, inputs.Select(i => i.Name).ToArray(), inputs.Select(i => i.Value).ToArray(), [output]);
            return results[0].GetTensorDataAsSpan<float>().ToArray();
        }
        finally
        {
            foreach (var (_, value) in inputs)
            {
                value.Dispose();
            }
        }
    }
}
