using System.CommandLine;
using System.Globalization;
using Microsoft.Extensions.Configuration;
using SearchOrchestrator.Onnx.Manifests;
using SearchOrchestrator.Onnx.Runtime;
using SearchOrchestrator.Server.OpenInference;

namespace SearchOrchestrator.Cli.Commands;

/// <summary>The options every command that loads models shares, and how they become a repository.</summary>
internal sealed class CommonOptions
{
    public Option<string?> Models { get; } = new("--models")
    {
        Description = "The model repository folder (default: $SEARCHORCH_MODELS, else the nearest ./models upward from here).",
    };

    public Option<string> ExecutionProvider { get; } = new("--execution-provider")
    {
        Description = "auto (CUDA when it loads, else CPU), cpu, cuda or tensorrt (a GPU provider that cannot load falls back to CPU).",
        DefaultValueFactory = _ => ExecutionProviderNames.Auto,
    };

    public Option<int> Threads { get; } = new("--threads")
    {
        Description = "ONNX Runtime intra-op threads (0 = one per core).",
        DefaultValueFactory = _ => 0,
    };

    public Option<string?> Plugins { get; } = new("--plugins")
    {
        Description = "A folder of plug-in assemblies (verifiers and strategies) to load.",
    };

    public Option<bool> Verbose { get; } = new("--verbose", "-v")
    {
        Description = "Log model loading and execution-provider choice.",
    };

    public void AddTo(Command command)
    {
        command.Options.Add(Models);
        command.Options.Add(ExecutionProvider);
        command.Options.Add(Threads);
        command.Options.Add(Plugins);
        command.Options.Add(Verbose);
    }

    /// <summary>
    /// The command's host (<see cref="CliHost"/>), configured from these options, each bad one named with an
    /// <see cref="InvalidRequestException"/>: the repository where the command takes <c>--models</c> (warmed up unless
    /// <paramref name="warmUp"/> is false), the plug-in folder, where the command takes them the
    /// <c>--Verifiers:Remote:&lt;n&gt;:&lt;setting&gt; &lt;value&gt;</c> pairs (as for <c>searchorch serve</c>), and
    /// <paramref name="settings"/> of the command's own (e.g. <c>Batching:MaxBatchSize</c>).
    /// </summary>
    public CliHost CreateHost(ParseResult parse, bool warmUp = true, IEnumerable<KeyValuePair<string, string?>>? settings = null)
    {
        var options = parse.CommandResult.Command.Options;
        var configuration = new List<KeyValuePair<string, string?>>(settings ?? []);
        // In the order a mistake is reported: stray tokens, the repository options, the plug-in folder.
        if (!parse.CommandResult.Command.TreatUnmatchedTokensAsErrors)
        {
            configuration.AddRange(RemoteVerifierSettings(parse));
        }

        if (options.Contains(Models))
        {
            configuration.AddRange(RepositorySettings(parse, warmUp));
        }

        var folder = parse.GetValue(Plugins);
        if (!string.IsNullOrEmpty(folder))
        {
            configuration.Add(new($"{VerifierPluginOptions.SectionName}:{nameof(VerifierPluginOptions.Path)}", Directory.Exists(folder) ? folder : throw new InvalidRequestException("plugins", $"--plugins: the folder '{folder}' does not exist.")));
        }

        return CliHost.Create(configuration, options.Contains(Verbose) && parse.GetValue(Verbose));
    }

    private IEnumerable<KeyValuePair<string, string?>> RepositorySettings(ParseResult parse, bool warmUp)
    {
        var provider = parse.GetValue(ExecutionProvider)!;
        if (!ExecutionProviderNames.All.Contains(provider))
        {
            throw new InvalidRequestException("execution-provider", $"--execution-provider must be one of {string.Join(", ", ExecutionProviderNames.All)}, got '{provider}'.");
        }

        var threads = parse.GetValue(Threads);
        if (threads < 0)
        {
            throw new InvalidRequestException("threads", $"--threads must be >= 0, got {threads}.");
        }

        const string Section = ModelRepositoryOptions.SectionName;
        return
        [
            new($"{Section}:{nameof(ModelRepositoryOptions.Path)}", ResolveModelsPath(parse.GetValue(Models))),
            new($"{Section}:{nameof(ModelRepositoryOptions.ExecutionProvider)}", provider),
            new($"{Section}:{nameof(ModelRepositoryOptions.IntraOpThreads)}", threads.ToString(CultureInfo.InvariantCulture)),
            new($"{Section}:{nameof(ModelRepositoryOptions.WarmUp)}", warmUp.ToString(CultureInfo.InvariantCulture)),
        ];
    }

    /// <summary>
    /// The <c>kserve</c> verifiers' settings of <c>--Verifiers:Remote:&lt;n&gt;:&lt;setting&gt; &lt;value&gt;</c> pairs,
    /// validated naming each bad setting; any other stray token is a usage error.
    /// </summary>
    private static IEnumerable<KeyValuePair<string, string?>> RemoteVerifierSettings(ParseResult parse)
    {
        var tokens = parse.UnmatchedTokens;
        var stray = tokens.Where((token, i) => i % 2 == 0 && !token.StartsWith($"--{VerifierPluginOptions.SectionName}:Remote:", StringComparison.OrdinalIgnoreCase)).ToList();
        if (tokens.Count % 2 == 1 && stray.Count == 0)
        {
            stray.Add(tokens[^1]);
        }

        if (stray.Count > 0)
        {
            // As the parser says it (settings other than --Verifiers:Remote:<n>:<setting> <value> pairs are not taken here).
            throw new InvalidRequestException("arguments", $"{string.Join(" ", stray.Select(t => $"Unrecognized command or argument '{t}'."))} (see 'searchorch {parse.CommandResult.Command.Name} --help')");
        }

        var configuration = new ConfigurationBuilder().AddCommandLine([.. tokens]).Build();
        var failures = KServeVerifierOptionsValidator.Check(configuration.GetSection(VerifierPluginOptions.SectionName).Get<VerifierPluginOptions>() ?? new VerifierPluginOptions());
        return failures.Count == 0
            ? configuration.AsEnumerable().Where(setting => setting.Value is not null)
            : throw new InvalidRequestException($"{VerifierPluginOptions.SectionName}:Remote", string.Join(" ", failures));
    }

    private static string ResolveModelsPath(string? given)
    {
        if (!string.IsNullOrEmpty(given))
        {
            return Directory.Exists(given) ? given : throw new InvalidRequestException("models", $"--models: the folder '{given}' does not exist.");
        }

        var fromEnvironment = Environment.GetEnvironmentVariable("SEARCHORCH_MODELS");
        if (!string.IsNullOrEmpty(fromEnvironment))
        {
            return fromEnvironment;
        }

        return FindNearestModels() ?? throw new InvalidRequestException("models", "no model repository found: pass --models <folder> or set SEARCHORCH_MODELS.");
    }

    /// <summary>The nearest <c>models</c> folder holding a manifest, from the current directory upward.</summary>
    public static string? FindNearestModels()
    {
        for (var dir = new DirectoryInfo(Environment.CurrentDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "models");
            if (Directory.Exists(candidate) && Directory.EnumerateFiles(candidate, ManifestNames.ManifestFileName, SearchOption.AllDirectories).Any())
            {
                return candidate;
            }
        }

        return null;
    }
}

/// <summary>Runs a command body and turns the caller's mistakes into one-line errors and exit code 2.</summary>
internal static class CommandErrors
{
    public const int Usage = 2;

    /// <summary>Stopped by Ctrl+C or SIGTERM (128 + SIGINT, as shells report it).</summary>
    public const int Cancelled = 130;

    public static async Task<int> RunAsync(Func<Task<int>> body)
    {
        try
        {
            return await body().ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is InvalidRequestException or ModelNotFoundException or DirectoryNotFoundException)
        {
            await Console.Error.WriteLineAsync($"searchorch: error: {ex.Message}").ConfigureAwait(false);
            return Usage;
        }
        catch (OperationCanceledException ex)
        {
            await Console.Error.WriteLineAsync(ex is CommandCancelledException cancelled ? $"searchorch: cancelled: {cancelled.Cleanup}" : "searchorch: cancelled").ConfigureAwait(false);
            return Cancelled;
        }
    }
}

/// <summary>A command stopped by Ctrl+C or SIGTERM, with what it cleaned up (for the one line it prints).</summary>
internal sealed class CommandCancelledException(string cleanup) : OperationCanceledException
{
    public string Cleanup { get; } = cleanup;
}
