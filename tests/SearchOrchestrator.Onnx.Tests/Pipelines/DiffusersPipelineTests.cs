using System.Text.Json;
using System.Text.Json.Nodes;
using SearchOrchestrator.Denoising;
using SearchOrchestrator.Onnx.Pipelines;
using SearchOrchestrator.Onnx.Repository;
using SearchOrchestrator.Onnx.Runtime;
using SearchOrchestrator.Processes;
using SearchOrchestrator.Tests;

namespace SearchOrchestrator.Onnx.Tests.Pipelines;

/// <summary>
/// Folders in the diffusers ONNX layout through the model repository: the tiny random-weight pipelines made by
/// models/training/make_tiny_pipelines.py (float32 as diffusers' converter writes it, float16 with Optimum's dtypes),
/// whose stages must reproduce the torch modules' outputs in reference.json, and broken copies of them.
/// </summary>
public sealed class DiffusersPipelineTests : IDisposable
{
    private static readonly string Fixtures = Path.Combine(RepositoryPaths.Root, "tests", "SearchOrchestrator.Onnx.Tests", "Fixtures", "pipelines");
    private readonly ModelRepository _repository = ModelRepository.Load(new ModelRepositoryOptions { Path = Fixtures, ExecutionProvider = "cpu", Instances = 2 });

    public void Dispose() => _repository.Dispose();

    [Fact]
    public void Load_TinyPipelines_AreReadyPipelinesWithTheirStagesAndDtypes()
    {
        Assert.All(_repository.Models, m => Assert.True(m.IsReady, m.Error));
        Assert.Equal(["pipeline", "pipeline"], _repository.Models.Select(m => m.Kind));
        var fp32 = _repository.Models.Single(m => m.Name == "tiny-sd").Stages!;
        var fp16 = _repository.Models.Single(m => m.Name == "tiny-sd-fp16").Stages!;
        Assert.Equal(["text_encoder", "unet", "vae_decoder"], fp32.Select(s => s.Name));
        Assert.Equal(["float32", "float32", "float32"], fp32.Select(s => s.Dtype));
        Assert.Equal(["float16", "float16", "float16"], fp16.Select(s => s.Dtype));
        Assert.Equal("input_ids:int32[-1,-1]", fp32[0].Inputs.Single().ToString());
        Assert.Equal("sample:float32[-1,-1,-1,-1] timestep:float32[-1] encoder_hidden_states:float32[-1,-1,16]", string.Join(' ', fp32[1].Inputs));
        Assert.Equal("sample:float16[-1,-1,-1,-1] timestep:int64[-1] encoder_hidden_states:float16[-1,-1,16]", string.Join(' ', fp16[1].Inputs));
    }

    [Fact]
    public void GetPipeline_TinySd_DescribesShapesFromConfigsAndTheDecoderItself()
    {
        var pipeline = _repository.GetPipeline("tiny-sd");

        Assert.Equal((8, 16), (pipeline.TextEncoder.Description.SequenceLength, pipeline.TextEncoder.Description.HiddenSize));
        Assert.Equal([4, 8, 8], pipeline.Denoiser.Description.SampleShape.Dimensions);
        Assert.Equal([3, 16, 16], pipeline.Decoder.Description.ImageShape.Dimensions); // no VAE config: found by one pass
        Assert.Equal(DiffusersLayout.DefaultScalingFactor, pipeline.Decoder.Description.ScalingFactor);
        Assert.Equal(0.5, _repository.GetPipeline("tiny-sd-fp16").Decoder.Description.ScalingFactor);
        Assert.Equal(2, pipeline.DenoiserInstances.Count);
        Assert.True(pipeline.Denoiser.Description.Conditions.IsFreeText);
    }

    [Fact]
    public void GetPipeline_SchedulerConfigs_BecomeTheGaussianProcess()
    {
        var fp32 = (GaussianProcess)_repository.GetPipeline("tiny-sd").Denoiser.Description.Process;
        var fp16 = (GaussianProcess)_repository.GetPipeline("tiny-sd-fp16").Denoiser.Description.Process;
        var linear = NoiseSchedule.Linear(500, 0.0001, 0.02);
        var cosine = NoiseSchedule.Cosine(1000);

        // tiny-sd: linear β over 500 steps, v_prediction, clip_sample ±1, linspace spacing, set_alpha_to_one false.
        Assert.Equal((PredictionType.V, ((float, float)?)(-1f, 1f)), (fp32.Prediction, fp32.SampleRange));
        Assert.Equal(linear.Betas, fp32.Schedule.Betas);
        var steps = fp32.Steps(4);
        Assert.Equal([499, 333, 166, 0], Enumerable.Range(0, 4).Select(steps.TimestepAt));
        Assert.Equal(linear.AlphaBar(0), steps.AlphaBarAt(4));
        // tiny-sd-fp16: squaredcos_cap_v2, sample prediction, trailing spacing, set_alpha_to_one true; its PNDM config
        // has no clip_sample, so DDIM's default (true, range 1) applies, as DDIMScheduler.from_config would.
        Assert.Equal((PredictionType.Sample, ((float, float)?)(-1f, 1f)), (fp16.Prediction, fp16.SampleRange));
        Assert.Equal(cosine.Betas, fp16.Schedule.Betas);
        var trailing = fp16.Steps(4);
        Assert.Equal([999, 749, 499, 249], Enumerable.Range(0, 4).Select(trailing.TimestepAt));
        Assert.Equal(1.0, trailing.AlphaBarAt(4));
    }

    [Theory]
    [InlineData("tiny-sd", 1e-4)]
    [InlineData("tiny-sd-fp16", 2e-2)]
    public async Task Stages_TinyPipeline_ReproduceTheTorchModules(string name, double tolerance)
    {
        var reference = Reference(name);
        var pipeline = _repository.GetPipeline(name);
        var captions = reference.GetProperty("captions").EnumerateArray().Select(c => c.GetString()!).ToList();
        var prompt = pipeline.TextEncoder.Description;
        var embeddings = new float[captions.Count * prompt.EmbeddingElements];
        var latents = Floats(reference, "latents");
        var prediction = new float[latents.Length];
        var images = new float[2 * pipeline.Decoder.Description.ImageShape.ElementCount];
        var scaled = latents.Select(v => (float)(v * pipeline.Decoder.Description.ScalingFactor)).ToArray();

        await pipeline.TextEncoder.EncodeAsync(captions, embeddings);
        await pipeline.Denoiser.PredictAsync(new PromptDenoiserBatch(2, latents, new float[] { 801, 17 }, embeddings.AsMemory(0, 2 * prompt.EmbeddingElements)), prediction);
        await pipeline.Decoder.DecodeAsync(2, scaled, images);

        Assert.Equal(reference.GetProperty("inputIds").EnumerateArray().Select(r => r.EnumerateArray().Select(i => i.GetInt32()).ToArray()), captions.Select(pipeline.Tokenizer.Encode));
        AssertClose(Floats(reference, "lastHiddenState"), embeddings, tolerance);
        AssertClose(Floats(reference, "outSample"), prediction, tolerance);
        AssertClose(Floats(reference, "decoded"), images, tolerance);
    }

    [Fact]
    public async Task Denoiser_EverySession_GivesTheSameOutput()
    {
        var pipeline = _repository.GetPipeline("tiny-sd");
        var embeddings = new float[pipeline.TextEncoder.Description.EmbeddingElements];
        await pipeline.TextEncoder.EncodeAsync(["two red circles"], embeddings);
        var latents = Floats(Reference("tiny-sd"), "latents")[..256];
        var outputs = new List<float[]>();

        foreach (var instance in pipeline.DenoiserInstances)
        {
            var output = new float[256];
            await instance.PredictAsync(new PromptDenoiserBatch(1, latents, new float[] { 300 }, embeddings), output);
            outputs.Add(output);
        }

        Assert.Equal(outputs[0], outputs[1]);
    }

    [Fact]
    public void GetPipeline_ManifestModelName_SaysWhatItIs()
    {
        using var broken = new BrokenCopy();
        using var repository = broken.Load();

        var ex = Assert.Throws<InvalidRequestException>(() => repository.GetPipeline("counting"));
        var denoiser = Assert.Throws<InvalidRequestException>(() => repository.GetDenoiser("tiny-sd"));

        Assert.Equal("model 'counting' is a denoiser, not a pipeline.", ex.Message);
        Assert.Equal("model 'tiny-sd' is a pipeline, not a denoiser.", denoiser.Message);
    }

    public static TheoryData<string, string> Breakages() => new()
    {
        { "missing unet", "model 'tiny-sd': unet/model.onnx: missing" },
        { "unet is the decoder", "model 'tiny-sd': unet/model.onnx: input 'latent_sample' is not one the converter writes (expected sample, timestep, encoder_hidden_states); unet/model.onnx: sample: missing (the graph has latent_sample); unet/model.onnx: timestep: missing (the graph has latent_sample); unet/model.onnx: encoder_hidden_states: missing (the graph has latent_sample); unet/model.onnx: out_sample: missing (the graph has sample)" },
        { "cubic beta schedule", "model 'tiny-sd': scheduler/scheduler_config.json: beta_schedule: 'cubic' is not one of linear, scaled_linear, squaredcos_cap_v2" },
        { "bad prediction and spacing", "model 'tiny-sd': scheduler/scheduler_config.json: prediction_type: 'noise' is not one of epsilon, v_prediction, sample; scheduler/scheduler_config.json: timestep_spacing: 'even' is not one of leading, trailing, linspace" },
        { "no model_index", "model 'tiny-sd': model_index.json: missing (a folder in the diffusers layout starts with it)" },
        { "no unet in model_index", "model 'tiny-sd': model_index.json: unet: missing (a Stable Diffusion pipeline needs tokenizer, text_encoder, unet, vae_decoder, scheduler as [library, class])" },
        { "cross attention mismatch", "model 'tiny-sd': unet/config.json: cross_attention_dim: 32, but text_encoder/model.onnx: last_hidden_state axis 2 is 16 (hidden size must agree)" },
        { "tokenizer longer than the encoder", "model 'tiny-sd': tokenizer/tokenizer_config.json: model_max_length: 77, but text_encoder/config.json: max_position_embeddings is 8" },
    };

    [Theory]
    [MemberData(nameof(Breakages))]
    public void Load_BrokenLayout_IsRefusedNamingFileAndFieldWhileOthersLoad(string breakage, string expected)
    {
        using var broken = new BrokenCopy();
        broken.Break(breakage);

        using var repository = broken.Load();

        var entry = repository.Models.Single(m => m.Name == "tiny-sd");
        Assert.False(entry.IsReady);
        Assert.Equal("pipeline", entry.Kind);
        Assert.Equal(expected, entry.Error);
        Assert.True(repository.Models.Single(m => m.Name == "counting").IsReady);
        Assert.True(repository.Models.Single(m => m.Name == "tiny-sd-fp16").IsReady);
        var ex = Assert.Throws<ModelNotFoundException>(() => repository.GetPipeline("tiny-sd"));
        Assert.Contains(expected, ex.Message, StringComparison.Ordinal);
    }

    private static JsonElement Reference(string name)
    {
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(Fixtures, name, "reference.json")));
        return json.RootElement.Clone();
    }

    private static float[] Floats(JsonElement reference, string field) => [.. reference.GetProperty(field).EnumerateArray().Select(v => v.GetSingle())];

    private static void AssertClose(float[] expected, float[] actual, double tolerance)
    {
        Assert.Equal(expected.Length, actual.Length);
        var worst = expected.Zip(actual, (e, a) => Math.Abs(e - a)).Max();
        Assert.True(worst <= tolerance, $"largest difference {worst} > {tolerance}");
    }

    /// <summary>A repository with copies of both tiny pipelines and the shipped counting denoiser, one to break.</summary>
    private sealed class BrokenCopy : IDisposable
    {
        private readonly string _path = Directory.CreateTempSubdirectory("searchorch-pipelines-").FullName;

        public BrokenCopy()
        {
            Copy(Fixtures, _path);
            Directory.CreateDirectory(Path.Combine(_path, "counting"));
            foreach (var file in new[] { "model.json", "model.onnx" })
            {
                File.Copy(Path.Combine(RepositoryPaths.Models, "counting", file), Path.Combine(_path, "counting", file));
            }
        }

        private string TinySd => Path.Combine(_path, "tiny-sd");

        public ModelRepository Load() => ModelRepository.Load(new ModelRepositoryOptions { Path = _path, ExecutionProvider = "cpu", WarmUp = false });

        public void Break(string breakage)
        {
            switch (breakage)
            {
                case "missing unet":
                    File.Delete(Path.Combine(TinySd, "unet", "model.onnx"));
                    break;
                case "unet is the decoder":
                    File.Copy(Path.Combine(TinySd, "vae_decoder", "model.onnx"), Path.Combine(TinySd, "unet", "model.onnx"), overwrite: true);
                    break;
                case "cubic beta schedule":
                    Edit("scheduler/scheduler_config.json", j => j["beta_schedule"] = "cubic");
                    break;
                case "bad prediction and spacing":
                    Edit("scheduler/scheduler_config.json", j =>
                    {
                        j["prediction_type"] = "noise";
                        j["timestep_spacing"] = "even";
                    });
                    break;
                case "no model_index":
                    File.Delete(Path.Combine(TinySd, "model_index.json"));
                    break;
                case "no unet in model_index":
                    Edit("model_index.json", j => j.Remove("unet"));
                    break;
                case "cross attention mismatch":
                    Edit("unet/config.json", j => j["cross_attention_dim"] = 32);
                    break;
                case "tokenizer longer than the encoder":
                    Edit("tokenizer/tokenizer_config.json", j => j["model_max_length"] = 77);
                    File.WriteAllText(Path.Combine(TinySd, "text_encoder", "config.json"), """{"max_position_embeddings": 8}""");
                    break;
                default:
                    throw new ArgumentOutOfRangeException(nameof(breakage), breakage, null);
            }
        }

        public void Dispose() => Directory.Delete(_path, recursive: true);

        private void Edit(string file, Action<JsonObject> edit)
        {
            var path = Path.Combine(TinySd, file);
            var json = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
            edit(json);
            File.WriteAllText(path, json.ToJsonString());
        }

        private static void Copy(string from, string to)
        {
            foreach (var directory in Directory.GetDirectories(from, "*", SearchOption.AllDirectories))
            {
                Directory.CreateDirectory(directory.Replace(from, to, StringComparison.Ordinal));
            }

            foreach (var file in Directory.GetFiles(from, "*", SearchOption.AllDirectories))
            {
                File.Copy(file, file.Replace(from, to, StringComparison.Ordinal));
            }
        }
    }
}
