namespace SearchOrchestrator;

/// <summary>
/// A request the caller can fix: the message says which argument is wrong and what to change.
/// The gRPC layer maps it to <c>InvalidArgument</c>; the CLI prints it on one line and exits non-zero.
/// </summary>
public sealed class InvalidRequestException : Exception
{
    /// <summary>Creates the exception for the named argument.</summary>
    public InvalidRequestException(string argument, string message)
        : base(message)
    {
        Argument = argument;
    }

    /// <summary>The request field or command-line argument that is wrong, e.g. <c>condition</c>.</summary>
    public string Argument { get; }
}

/// <summary>A model name that the repository does not serve (maps to gRPC <c>NotFound</c>).</summary>
public sealed class ModelNotFoundException : Exception
{
    /// <summary>Creates the exception for <paramref name="modelName"/>.</summary>
    public ModelNotFoundException(string modelName, string message)
        : base(message)
    {
        ModelName = modelName;
    }

    /// <summary>The name that was asked for.</summary>
    public string ModelName { get; }
}
