namespace SearchOrchestrator.Onnx.Pipelines;

/// <summary>A diffusers-layout folder is missing a file or has one that does not fit; the message names the file and field.</summary>
public sealed class PipelineLayoutException : Exception
{
    /// <summary>Creates the exception for <paramref name="file"/> (relative to the pipeline folder).</summary>
    public PipelineLayoutException(string file, string message)
        : base($"{file}: {message}")
    {
        File = file;
    }

    /// <summary>The file at fault, relative to the pipeline folder (<c>tokenizer/vocab.json</c>).</summary>
    public string File { get; }
}
