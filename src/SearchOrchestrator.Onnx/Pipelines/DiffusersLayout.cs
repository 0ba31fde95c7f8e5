using Microsoft.ML.OnnxRuntime.Tensors;

namespace SearchOrchestrator.Onnx.Pipelines;

/// <summary>
/// The file and tensor names of the diffusers / Optimum ONNX layout of Stable Diffusion 1.x/2.x pipelines, as
/// diffusers' <c>scripts/convert_stable_diffusion_checkpoint_to_onnx.py</c> and Optimum's exporter write them.
/// </summary>
public static class DiffusersLayout
{
    /// <summary>The file that marks a folder as a diffusers pipeline.</summary>
    public const string ModelIndex = "model_index.json";

    /// <summary>Each ONNX component's file inside its folder.</summary>
    public const string ModelFile = "model.onnx";

    /// <summary>Optimum's per-component config inside a component's folder.</summary>
    public const string ConfigFile = "config.json";

    /// <summary>The component folders the loader needs (<c>vae_encoder</c> is optional and not loaded).</summary>
    public const string Tokenizer = "tokenizer", TextEncoder = "text_encoder", Unet = "unet", VaeDecoder = "vae_decoder", Scheduler = "scheduler";

    /// <summary>Tensor names.</summary>
    public const string InputIds = "input_ids", LastHiddenState = "last_hidden_state", Sample = "sample", Timestep = "timestep",
        EncoderHiddenStates = "encoder_hidden_states", OutSample = "out_sample", LatentSample = "latent_sample";

    /// <summary>Stable Diffusion's VAE scaling factor, which <c>OnnxStableDiffusionPipeline</c> assumes when no config says otherwise.</summary>
    public const double DefaultScalingFactor = 0.18215;

    /// <summary>The dtypes one U-Net export uses for its inputs and output.</summary>
    internal sealed record UnetTypes(TensorElementType Sample, TensorElementType Timestep, TensorElementType EncoderHiddenStates, TensorElementType OutSample);
}

/// <summary>One ONNX tensor of a stage as the graph declares it: name, dtype (<c>float32</c>, <c>float16</c>, <c>int64</c> …) and shape (−1: dynamic).</summary>
public sealed record StageTensor(string Name, string Dtype, IReadOnlyList<long> Shape)
{
    /// <inheritdoc />
    public override string ToString() => $"{Name}:{Dtype}[{string.Join(',', Shape)}]";
}

/// <summary>One stage of a loaded pipeline: <c>text_encoder</c>, <c>unet</c> or <c>vae_decoder</c>, with its file and tensors.</summary>
public sealed record PipelineStage(string Name, string File, IReadOnlyList<StageTensor> Inputs, IReadOnlyList<StageTensor> Outputs)
{
    /// <summary>The stage's floating-point dtype: <c>float16</c> when any input or output is, else <c>float32</c>.</summary>
    public string Dtype => Inputs.Concat(Outputs).Any(t => t.Dtype == "float16") ? "float16" : "float32";
}
