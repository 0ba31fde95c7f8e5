namespace SearchOrchestrator.Cli.Commands;

/// <summary>
/// An output file written all at once or not at all: it is checked and reserved before any work starts
/// (a temporary file beside the target), and only <see cref="Commit"/> moves the finished bytes into place.
/// </summary>
internal sealed class OutputFile : IDisposable
{
    private readonly string _temporary;
    private bool _committed;

    private OutputFile(string path, string temporary)
    {
        Path = path;
        _temporary = temporary;
    }

    public string Path { get; }

    /// <summary>Reserves <paramref name="path"/>; a path that cannot be written is the caller's mistake.</summary>
    public static OutputFile Open(string path, string argument = "out")
    {
        if (string.IsNullOrWhiteSpace(path) || !path.EndsWith(".png", StringComparison.OrdinalIgnoreCase))
        {
            throw new InvalidRequestException(argument, $"--{argument} must name a .png file, got '{path}'.");
        }

        var full = System.IO.Path.GetFullPath(path);
        var directory = System.IO.Path.GetDirectoryName(full)!;
        if (!Directory.Exists(directory))
        {
            throw new InvalidRequestException(argument, $"--{argument}: the folder '{directory}' does not exist.");
        }

        if (Directory.Exists(full))
        {
            throw new InvalidRequestException(argument, $"--{argument}: '{full}' is a folder.");
        }

        var temporary = System.IO.Path.Combine(directory, $".{System.IO.Path.GetFileName(full)}.{Environment.ProcessId}.tmp");
        try
        {
            File.WriteAllBytes(temporary, []);
        }
        catch (Exception ex) when (ex is UnauthorizedAccessException or IOException)
        {
            throw new InvalidRequestException(argument, $"--{argument}: cannot write to '{directory}': {ex.Message}");
        }

        return new OutputFile(full, temporary);
    }

    /// <summary>Writes the bytes and moves them over the target in one step.</summary>
    public void Commit(byte[] bytes)
    {
        File.WriteAllBytes(_temporary, bytes);
        File.Move(_temporary, Path, overwrite: true);
        _committed = true;
    }

    public void Dispose()
    {
        if (!_committed)
        {
            File.Delete(_temporary);
        }
    }
}
