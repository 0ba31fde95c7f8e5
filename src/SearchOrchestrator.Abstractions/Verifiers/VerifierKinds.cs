namespace SearchOrchestrator.Verifiers;

/// <summary>The kinds of verifier, as <see cref="IVerifier.Kind"/>, <c>ListModels</c> and the cost account name them.</summary>
public static class VerifierKinds
{
    /// <summary>An ONNX model of the repository, run in this process.</summary>
    public const string Onnx = "onnx";

    /// <summary>A C# class (built in, or from a plug-in assembly), run in this process.</summary>
    public const string Code = "code";

    /// <summary>A scoring model on an Open Inference Protocol server (<c>Verifiers:Remote</c>).</summary>
    public const string KServe = "kserve";

    /// <summary>A verifier the pool's <c>searchorch worker</c>s serve.</summary>
    public const string Worker = "worker";

    /// <summary>Where a verifier of this process runs (<c>ListModels</c>' <c>runs_on</c>).</summary>
    public const string Local = "local";
}
