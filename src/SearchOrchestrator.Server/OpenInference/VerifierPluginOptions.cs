namespace SearchOrchestrator.Server.OpenInference;

/// <summary>
/// Where plug-ins (verifiers and strategies) are loaded from, and the verifiers on Open Inference Protocol servers
/// (configuration section <c>Verifiers</c>, named for the first kind of plug-in).
/// </summary>
public sealed record VerifierPluginOptions
{
    /// <summary>The configuration section these options bind from.</summary>
    public const string SectionName = "Verifiers";

    /// <summary>A folder of plug-in assemblies; null or empty (the default) loads none.</summary>
    public string? Path { get; init; }

    /// <summary>Verifiers of kind <c>kserve</c> on Open Inference Protocol servers: <c>Verifiers:Remote:0</c>, <c>Verifiers:Remote:1</c> ….</summary>
    public IList<KServeVerifierOptions> Remote { get; init; } = [];
}
