using System.Text.Json;
using Microsoft.ML.OnnxRuntime;
using SearchOrchestrator.Tests;

namespace SearchOrchestrator.Onnx.Tests.Runtime;

/// <summary>
/// The shipped <c>shapes-t2i</c> family is a folder in the diffusers ONNX layout: the files, tensor names, dtypes and
/// dynamic axes diffusers' <c>convert_stable_diffusion_checkpoint_to_onnx.py</c> writes, plus Optimum's per-component
/// <c>config.json</c>; every stage runs in ONNX Runtime and chains into the next.
/// </summary>
public sealed class ShapesT2iExportTests
{
    private static readonly string Family = Path.Combine(RepositoryPaths.Models, "shapes-t2i");

    public static TheoryData<string, string, string> StageTensors() => new()
    {
        { "text_encoder", "inputs", "input_ids:Int32[-1,-1]" },
        { "text_encoder", "outputs", "last_hidden_state:Float[-1,-1,64] pooler_output:Float[-1,-1]" },
        { "unet", "inputs", "sample:Float[-1,-1,-1,-1] timestep:Float[-1] encoder_hidden_states:Float[-1,-1,64]" },
        { "unet", "outputs", "out_sample:Float[-1,4,-1,-1]" },
        { "vae_encoder", "inputs", "sample:Float[-1,-1,-1,-1]" },
        { "vae_encoder", "outputs", "latent_sample:Float[-1,-1,-1,-1]" },
        { "vae_decoder", "inputs", "latent_sample:Float[-1,-1,-1,-1]" },
        { "vae_decoder", "outputs", "sample:Float[-1,3,-1,-1]" },
    };

    [Theory]
    [MemberData(nameof(StageTensors))]
    public void Session_Stage_DeclaresTheConverterTensors(string stage, string side, string expected)
    {
        using var session = new InferenceSession(Path.Combine(Family, stage, "model.onnx"));

        var metadata = side == "inputs" ? session.InputMetadata : session.OutputMetadata;

        Assert.Equal(expected, string.Join(' ', metadata.Select(m => $"{m.Key}:{m.Value.ElementDataType}[{string.Join(',', m.Value.Dimensions)}]")));
    }

    [Fact]
    public void ModelIndex_Family_ListsEveryComponentFolder()
    {
        using var index = JsonDocument.Parse(File.ReadAllText(Path.Combine(Family, "model_index.json")));
        var root = index.RootElement;

        Assert.Equal("OnnxStableDiffusionPipeline", root.GetProperty("_class_name").GetString());
        Assert.Equal("CLIPTokenizer", root.GetProperty("tokenizer")[1].GetString());
        Assert.Equal("DDIMScheduler", root.GetProperty("scheduler")[1].GetString());
        foreach (var stage in new[] { "text_encoder", "unet", "vae_encoder", "vae_decoder" })
        {
            Assert.Equal("OnnxRuntimeModel", root.GetProperty(stage)[1].GetString());
            Assert.True(File.Exists(Path.Combine(Family, stage, "model.onnx")), stage);
        }

        foreach (var file in new[] { "vocab.json", "merges.txt", "special_tokens_map.json", "tokenizer_config.json" })
        {
            Assert.True(File.Exists(Path.Combine(Family, "tokenizer", file)), file);
        }
    }

    [Fact]
    public void SchedulerAndVaeConfig_Family_CarryTheTrainingScheduleAndScalingFactor()
    {
        using var scheduler = JsonDocument.Parse(File.ReadAllText(Path.Combine(Family, "scheduler", "scheduler_config.json")));
        using var vae = JsonDocument.Parse(File.ReadAllText(Path.Combine(Family, "vae_decoder", "config.json")));
        var s = scheduler.RootElement;

        Assert.Equal("scaled_linear", s.GetProperty("beta_schedule").GetString());
        Assert.Equal(0.00085, s.GetProperty("beta_start").GetDouble());
        Assert.Equal(0.012, s.GetProperty("beta_end").GetDouble());
        Assert.Equal(1000, s.GetProperty("num_train_timesteps").GetInt32());
        Assert.Equal("epsilon", s.GetProperty("prediction_type").GetString());
        Assert.Equal("leading", s.GetProperty("timestep_spacing").GetString());
        Assert.Equal(1, s.GetProperty("steps_offset").GetInt32());
        Assert.False(s.GetProperty("set_alpha_to_one").GetBoolean());
        Assert.InRange(vae.RootElement.GetProperty("scaling_factor").GetDouble(), 0.01, 100);
        Assert.Equal(4, vae.RootElement.GetProperty("latent_channels").GetInt32());
    }

    [Fact]
    public void Vocabulary_Tokenizer_EndsWithTheClipSpecialTokensAndHasOneTokenPerCaptionWord()
    {
        var vocab = JsonSerializer.Deserialize<Dictionary<string, int>>(File.ReadAllText(Path.Combine(Family, "tokenizer", "vocab.json")))!;

        Assert.Equal(vocab.Count - 2, vocab["<|startoftext|>"]);
        Assert.Equal(vocab.Count - 1, vocab["<|endoftext|>"]);
        Assert.Equal(256, vocab["!</w>"]); // the 256 byte symbols, then the same with the end-of-word suffix
        Assert.All(["one", "nine", "red", "yellow", "circle", "circles", "triangles", "and", ","], w => Assert.True(vocab.ContainsKey(w + "</w>"), w));
        Assert.StartsWith("#version", File.ReadLines(Path.Combine(Family, "tokenizer", "merges.txt")).First(), StringComparison.Ordinal);
    }

    [Fact]
    public void Pipeline_PromptThroughEveryStage_ReturnsAnRgbImageAndBroadcastsAOneElementTimestep()
    {
        var vocab = JsonSerializer.Deserialize<Dictionary<string, int>>(File.ReadAllText(Path.Combine(Family, "tokenizer", "vocab.json")))!;
        int bos = vocab["<|startoftext|>"], eos = vocab["<|endoftext|>"];
        var prompt = new[] { bos, vocab["two</w>"], vocab["red</w>"], vocab["circles</w>"], eos };
        var ids = prompt.Concat(Enumerable.Repeat(eos, 16 - prompt.Length)).ToArray();
        var empty = new[] { bos }.Concat(Enumerable.Repeat(eos, 15)).ToArray();
        using var text = new InferenceSession(Path.Combine(Family, "text_encoder", "model.onnx"));
        using var unet = new InferenceSession(Path.Combine(Family, "unet", "model.onnx"));
        using var decoder = new InferenceSession(Path.Combine(Family, "vae_decoder", "model.onnx"));

        var states = Run(text, "last_hidden_state", ("input_ids", OrtValue.CreateTensorValueFromMemory(empty.Concat(ids).ToArray(), [2, 16])));
        var latents = Enumerable.Range(0, 2 * 4 * 16 * 16).Select(i => (float)Math.Sin(i)).ToArray();
        var perSample = Run(unet, "out_sample",
            ("sample", OrtValue.CreateTensorValueFromMemory(latents, [2, 4, 16, 16])),
            ("timestep", OrtValue.CreateTensorValueFromMemory(new float[] { 801, 801 }, [2])),
            ("encoder_hidden_states", OrtValue.CreateTensorValueFromMemory(states, [2, 16, 64])));
        var broadcast = Run(unet, "out_sample",
            ("sample", OrtValue.CreateTensorValueFromMemory(latents, [2, 4, 16, 16])),
            ("timestep", OrtValue.CreateTensorValueFromMemory(new float[] { 801 }, [1])),
            ("encoder_hidden_states", OrtValue.CreateTensorValueFromMemory(states, [2, 16, 64])));
        var image = Run(decoder, "sample", ("latent_sample", OrtValue.CreateTensorValueFromMemory(perSample, [2, 4, 16, 16])));

        Assert.Equal(2 * 16 * 64, states.Length);
        Assert.NotEqual(states[..(16 * 64)], states[(16 * 64)..]); // the prompt's states differ from the empty prompt's
        Assert.Equal(perSample, broadcast);
        Assert.Equal(2 * 3 * 32 * 32, image.Length);
        Assert.All(image, v => Assert.True(float.IsFinite(v)));
    }

    private static float[] Run(InferenceSession session, string output, params (string Name, OrtValue Value)[] inputs)
    {
        try
        {
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
