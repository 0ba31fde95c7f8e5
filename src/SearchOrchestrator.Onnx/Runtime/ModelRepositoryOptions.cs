using Microsoft.Extensions.Options;

namespace SearchOrchestrator.Onnx.Runtime;

/// <summary>Where the models live and how ONNX Runtime runs them (configuration section <c>Models</c>).</summary>
public sealed record ModelRepositoryOptions
{
    /// <summary>The configuration section these options bind from.</summary>
    public const string SectionName = "Models";

    /// <summary>The repository folder: one sub-folder per model holding model.onnx and model.json. Default <c>models</c>.</summary>
    public string Path { get; init; } = "models";

    /// <summary>
    /// <c>auto</c> (default: CUDA when its libraries load, else CPU), <c>cpu</c>, <c>cuda</c> or <c>tensorrt</c> (opt-in;
    /// CUDA takes the nodes TensorRT does not). A GPU provider that cannot load falls back (TensorRT to CUDA, then CPU)
    /// with one log line naming what is missing, and the service starts.
    /// </summary>
    public string ExecutionProvider { get; init; } = ExecutionProviderNames.Auto;

    /// <summary>The CUDA (and TensorRT) device ordinal. Default 0.</summary>
    public int DeviceId { get; init; }

    /// <summary>
    /// Threads inside one operator, per session. 0 (default): the machine's cores divided among a denoiser's
    /// <see cref="Instances"/> (at least 1), set explicitly rather than left to ONNX Runtime's guess, so that the
    /// instances' passes together never ask for more threads than there are cores.
    /// </summary>
    public int IntraOpThreads { get; init; }

    /// <summary>
    /// Instances of each denoiser: sessions of the same model that run forward passes at the same time, each with its
    /// own pump, all fed from the model's one queue (Triton's instance groups). 0 (default): on the CPU provider one
    /// per core up to <see cref="MaxDefaultInstances"/>, on CUDA or TensorRT 1. With <see cref="IntraOpThreads"/> at 0 each instance
    /// then gets the cores divided among the instances, so a lone search's pass has a core to itself (never more
    /// threads than cores, which made a lone search slower) while a loaded server runs a pass on every core
    /// (BENCHMARKS.md, *threads and instances*).
    /// </summary>
    public int Instances { get; init; }

    /// <summary>
    /// Intra-op threads of a denoiser's lone-pass session: a pass that runs alone (no instance running one, and every
    /// search that could add work already in it, as a lone search's step is) runs there with more threads than an
    /// instance's share, so a lone search is no slower than with one session on every core, while under load each
    /// instance keeps its share. 0 (default): the machine's cores. The extra session is made only on the CPU provider
    /// and when this exceeds <see cref="IntraOpThreads"/>; set it to 1 to turn the rule off. ONNX Runtime gives
    /// bit-identical outputs for the shipped models at any intra-op thread count, so results do not depend on it.
    /// </summary>
    public int LonePassThreads { get; init; }

    /// <summary>Threads across independent operators; 0 (default) lets ONNX Runtime choose.</summary>
    public int InterOpThreads { get; init; }

    /// <summary>Run one small batch through every model at load, so the first request pays no start-up cost. Default true.</summary>
    public bool WarmUp { get; init; } = true;

    /// <summary>The most instances <see cref="Instances"/> 0 gives: beyond it, cores go to intra-op threads rather than to more copies of the model's memory.</summary>
    public const int MaxDefaultInstances = 4;

    /// <summary>
    /// The instances per denoiser, intra-op threads per instance and intra-op threads of the lone-pass session (0: none)
    /// these options give on <paramref name="cores"/> cores, on a GPU provider (<paramref name="gpu"/>) or the CPU.
    /// </summary>
    public (int Instances, int IntraOpThreads, int LonePassThreads) Threading(int cores, bool gpu)
    {
        cores = Math.Max(1, cores);
        var instances = Instances > 0 ? Instances : gpu ? 1 : Math.Min(cores, MaxDefaultInstances);
        var threads = IntraOpThreads > 0 ? IntraOpThreads : Math.Max(1, cores / instances);
        var lone = LonePassThreads > 0 ? LonePassThreads : cores;
        return (instances, threads, !gpu && lone > threads ? lone : 0);
    }
}

/// <summary>Validates <see cref="ModelRepositoryOptions"/>, naming every bad setting at once.</summary>
public sealed class ModelRepositoryOptionsValidator : IValidateOptions<ModelRepositoryOptions>
{
    /// <inheritdoc />
    public ValidateOptionsResult Validate(string? name, ModelRepositoryOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var failures = new List<string>();
        var section = ModelRepositoryOptions.SectionName;
        if (string.IsNullOrWhiteSpace(options.Path))
        {
            failures.Add($"{section}:Path must name the model repository folder.");
        }

        if (!ExecutionProviderNames.All.Contains(options.ExecutionProvider))
        {
            failures.Add($"{section}:ExecutionProvider must be one of {string.Join(", ", ExecutionProviderNames.All)}, got '{options.ExecutionProvider}'.");
        }

        if (options.DeviceId < 0)
        {
            failures.Add($"{section}:DeviceId must be >= 0, got {options.DeviceId}.");
        }

        if (options.IntraOpThreads < 0)
        {
            failures.Add($"{section}:IntraOpThreads must be >= 0 (0 = the cores divided among the instances), got {options.IntraOpThreads}.");
        }

        if (options.Instances is < 0 or > 64)
        {
            failures.Add($"{section}:Instances must be between 0 (one per core, up to {ModelRepositoryOptions.MaxDefaultInstances}) and 64, got {options.Instances}.");
        }

        if (options.LonePassThreads < 0)
        {
            failures.Add($"{section}:LonePassThreads must be >= 0 (0 = the machine's cores, 1 = no lone-pass session), got {options.LonePassThreads}.");
        }

        if (options.InterOpThreads < 0)
        {
            failures.Add($"{section}:InterOpThreads must be >= 0 (0 = ONNX Runtime's choice), got {options.InterOpThreads}.");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
