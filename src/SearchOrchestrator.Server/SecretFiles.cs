using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Configuration.CommandLine;
using Microsoft.Extensions.Configuration.KeyPerFile;
using Microsoft.Extensions.FileProviders;

namespace SearchOrchestrator.Server;

/// <summary>
/// Secrets read from files (configuration section <c>Secrets</c>): a folder whose every file is one setting, named
/// with <c>__</c> for <c>:</c> (<c>Worker__Secret</c>, <c>Workers__Secret</c>, <c>Auth__ApiKeys__0__Key</c>) as a
/// Kubernetes Secret volume, Docker secrets or systemd's <c>LoadCredential=</c> lay them out. They rank with the
/// environment, below the command line, so no secret ever has to appear on a command line.
/// </summary>
public sealed record SecretFilesOptions
{
    /// <summary>The configuration section these options bind from.</summary>
    public const string SectionName = "Secrets";

    /// <summary>The folder of secret files (set it through the environment, <c>Secrets__Path</c>). Default none.</summary>
    public string? Path { get; init; }

    /// <summary>Adds the folder <c>Secrets:Path</c> names (if any) to <paramref name="configuration"/>, just below the command line.</summary>
    /// <exception cref="InvalidOperationException">The folder does not exist.</exception>
    internal static void AddTo(ConfigurationManager configuration)
    {
        if (configuration[$"{SectionName}:{nameof(Path)}"] is not { Length: > 0 } folder)
        {
            return;
        }

        if (!Directory.Exists(folder))
        {
            throw new InvalidOperationException($"{SectionName}:{nameof(Path)}: the folder '{folder}' does not exist.");
        }

        var commandLine = configuration.Sources.TakeWhile(s => s is not CommandLineConfigurationSource).Count();
        configuration.Sources.Insert(commandLine, new KeyPerFileConfigurationSource
        {
            FileProvider = new PhysicalFileProvider(System.IO.Path.GetFullPath(folder)),
            Optional = false,
            IgnoreCondition = name => name.StartsWith('.'), // a Kubernetes volume's ..data links
        });
    }
}
