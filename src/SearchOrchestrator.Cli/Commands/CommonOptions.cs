using System.CommandLine;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;
using SearchOrchestrator.Onnx.Manifests;
using SearchOrchestrator.Onnx.Repository;
using SearchOrchestrator.Onnx.Runtime;
using SearchOrchestrator.Search;
using SearchOrchestrator.Server.OpenInference;
using SearchOrchestrator.Server.Plugins;
using SearchOrchestrator.Strategies;
using SearchOrchestrator.Verifiers;

namespace SearchOrchestrator.Cli.Commands;

/// <summary>The options every command that loads models shares, and how they become a repository.</summary>
internal sealed class CommonOptions
{
    private LoadedPlugins? _plugins;

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

    /// <summary>Loads the repository the options name; throws <see cref="InvalidRequestException"/> for bad options.</summary>
    public ModelRepository LoadRepository(ParseResult parse, bool warmUp = true)
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

        var options = new ModelRepositoryOptions
        {
            Path = ResolveModelsPath(parse.GetValue(Models)),
            ExecutionProvider = provider,
            IntraOpThreads = threads,
            WarmUp = warmUp,
        };
        using var loggers = CreateLoggers(parse);
        return ModelRepository.Load(options, loggers.CreateLogger<ModelRepository>());
    }

    /// <summary>The repository's models plus the built-in object counter, any verifier plug-ins and <paramref name="remote"/> verifiers.</summary>
    public ModelCatalog CreateCatalog(ParseResult parse, ModelRepository repository, IEnumerable<IVerifier>? remote = null) =>
        new(repository, [new ObjectCounter(), new SudokuVerifier(), new CompositionJudge(), .. LoadPlugins(parse).Verifiers, .. remote ?? []]);

    /// <summary>
    /// The <c>kserve</c> verifiers set by <c>--Verifiers:Remote:&lt;n&gt;:&lt;setting&gt; &lt;value&gt;</c> (as for
    /// <c>searchorch serve</c>), validated naming each bad setting; any other stray token is a usage error.
    /// </summary>
    public static KServeVerifiers RemoteVerifiers(ParseResult parse)
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

        var options = new ConfigurationBuilder().AddCommandLine([.. tokens]).Build().GetSection(VerifierPluginOptions.SectionName).Get<VerifierPluginOptions>() ?? new VerifierPluginOptions();
        var failures = KServeVerifierOptionsValidator.Check(options);
        return failures.Count == 0 ? new KServeVerifiers(options.Remote) : throw new InvalidRequestException($"{VerifierPluginOptions.SectionName}:Remote", string.Join(" ", failures));
    }

    /// <summary>The built-in strategies plus any strategy plug-ins.</summary>
    public StrategyCatalog CreateStrategies(ParseResult parse) => new([.. StrategyCatalog.BuiltIns, .. LoadPlugins(parse).Strategies]);

    /// <summary>The plug-ins of <c>--plugins</c>, loaded once.</summary>
    private LoadedPlugins LoadPlugins(ParseResult parse)
    {
        if (_plugins is not null)
        {
            return _plugins;
        }

        var folder = parse.GetValue(Plugins);
        if (!string.IsNullOrEmpty(folder) && !Directory.Exists(folder))
        {
            throw new InvalidRequestException("plugins", $"--plugins: the folder '{folder}' does not exist.");
        }

        using var loggers = CreateLoggers(parse);
        _plugins = string.IsNullOrEmpty(folder) ? LoadedPlugins.None : PluginLoader.Load(folder, loggers.CreateLogger("plugins"));
        return _plugins;
    }

    private ILoggerFactory CreateLoggers(ParseResult parse) => LoggerFactory.Create(b => b
        .AddSimpleConsole(o => o.SingleLine = true)
        .SetMinimumLevel(parse.GetValue(Verbose) ? LogLevel.Information : LogLevel.Warning));

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
