using Microsoft.Extensions.Options;
using SearchOrchestrator.Onnx.Runtime;

namespace SearchOrchestrator.Onnx.Repository;

/// <summary>Where the models live and how ONNX Runtime runs them (configuration section <c>Models</c>).</summary>
public sealed record ModelRepositoryOptions
{
    /// <summary>The configuration section these options bind from.</summary>
    public const string SectionName = "Models";

    /// <summary>The repository folder: one sub-folder per model holding model.onnx and model.json. Default <c>models</c>.</summary>
    public string Path { get; init; } = "models";

    /// <summary><c>auto</c> (default), <c>cpu</c> or <c>cuda</c>. CUDA falls back to CPU, with a log line, when it cannot load.</summary>
    public string ExecutionProvider { get; init; } = ExecutionProviderNames.Auto;

    /// <summary>The CUDA device ordinal. Default 0.</summary>
    public int DeviceId { get; init; }

    /// <summary>Threads inside one operator; 0 (default) lets ONNX Runtime use one per core.</summary>
    public int IntraOpThreads { get; init; }

    /// <summary>Threads across independent operators; 0 (default) lets ONNX Runtime choose.</summary>
    public int InterOpThreads { get; init; }

    /// <summary>Run one small batch through every model at load, so the first request pays no start-up cost. Default true.</summary>
    public bool WarmUp { get; init; } = true;
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
            failures.Add($"{section}:IntraOpThreads must be >= 0 (0 = one per core), got {options.IntraOpThreads}.");
        }

        if (options.InterOpThreads < 0)
        {
            failures.Add($"{section}:InterOpThreads must be >= 0 (0 = ONNX Runtime's choice), got {options.InterOpThreads}.");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
