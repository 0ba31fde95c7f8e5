using System.Reflection;
using System.Runtime.Loader;
using Microsoft.Extensions.Logging;
using SearchOrchestrator.Search;
using SearchOrchestrator.Server.OpenInference;
using SearchOrchestrator.Strategies;
using SearchOrchestrator.Verifiers;

namespace SearchOrchestrator.Server.Plugins;

/// <summary>What a folder of plug-in assemblies holds.</summary>
/// <param name="Verifiers">C# verifiers, one instance each.</param>
/// <param name="Strategies">Search strategies, by their definitions.</param>
public sealed record LoadedPlugins(IReadOnlyList<IVerifier> Verifiers, IReadOnlyList<StrategyDefinition> Strategies)
{
    /// <summary>No plug-ins.</summary>
    public static LoadedPlugins None { get; } = new([], []);
}

/// <summary>
/// Loads C# plug-ins from the assemblies of a folder: every public, non-abstract <see cref="IVerifier"/> with a
/// parameterless constructor, and every public strategy that implements <see cref="ISearchStrategy{TSelf}"/> (by its
/// <see cref="ISearchStrategy{TSelf}.Definition"/>). Each assembly gets its own load context that shares the host's
/// SearchOrchestrator and framework assemblies (so the contracts are one type) and resolves the plug-in's own
/// dependencies beside it. An assembly that fails to load, a verifier whose constructor throws, or a strategy whose
/// definition cannot be read or whose name is a built-in's, is logged and skipped.
/// </summary>
public static class PluginLoader
{
    /// <summary>Loads every plug-in in <paramref name="folder"/>.</summary>
    /// <exception cref="DirectoryNotFoundException">The folder does not exist.</exception>
    public static LoadedPlugins Load(string folder, ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(folder);
        ArgumentNullException.ThrowIfNull(logger);
        var root = Path.GetFullPath(folder);
        if (!Directory.Exists(root))
        {
            throw new DirectoryNotFoundException($"The plug-in folder '{root}' does not exist; set {VerifierPluginOptions.SectionName}:Path (or --plugins) to a folder of plug-in assemblies.");
        }

        var verifiers = new List<IVerifier>();
        var strategies = new List<StrategyDefinition>();
        foreach (var path in Directory.EnumerateFiles(root, "*.dll").Order(StringComparer.Ordinal))
        {
            Type[] types;
            try
            {
                var assembly = new PluginLoadContext(path).LoadFromAssemblyPath(path);
                types = assembly.GetExportedTypes();
            }
            catch (Exception ex) when (ex is BadImageFormatException or FileLoadException or FileNotFoundException or ReflectionTypeLoadException)
            {
                PluginLog.AssemblySkipped(logger, Path.GetFileName(path), ex.Message);
                continue;
            }

            foreach (var type in types.Where(t => t is { IsAbstract: false, IsInterface: false }))
            {
                if (typeof(IVerifier).IsAssignableFrom(type) && type.GetConstructor(Type.EmptyTypes) is not null)
                {
                    AddVerifier(type, path, verifiers, logger);
                }

                if (type.GetInterfaces().Any(i => i.IsGenericType && i.GetGenericTypeDefinition() == typeof(ISearchStrategy<>) && i.GenericTypeArguments[0] == type))
                {
                    AddStrategy(type, path, strategies, logger);
                }
            }
        }

        return new LoadedPlugins(verifiers, strategies);
    }

    private static void AddVerifier(Type type, string path, List<IVerifier> verifiers, ILogger logger)
    {
        try
        {
            var verifier = (IVerifier)Activator.CreateInstance(type)!;
            verifiers.Add(verifier);
            PluginLog.VerifierLoaded(logger, verifier.Name, type.FullName!, Path.GetFileName(path));
        }
        catch (TargetInvocationException ex)
        {
            PluginLog.VerifierSkipped(logger, type.FullName!, ex.InnerException?.Message ?? ex.Message);
        }
    }

    private static void AddStrategy(Type type, string path, List<StrategyDefinition> strategies, ILogger logger)
    {
        StrategyDefinition definition;
        try
        {
            definition = (StrategyDefinition)typeof(PluginLoader).GetMethod(nameof(DefinitionOf), BindingFlags.NonPublic | BindingFlags.Static)!.MakeGenericMethod(type).Invoke(null, null)!;
        }
        catch (TargetInvocationException ex)
        {
            PluginLog.StrategySkipped(logger, type.FullName!, ex.InnerException?.Message ?? ex.Message);
            return;
        }

        if (StrategyCatalog.BuiltIns.Any(b => b.Name == definition.Name) || strategies.Any(s => s.Name == definition.Name))
        {
            PluginLog.StrategySkipped(logger, type.FullName!, $"the name '{definition.Name}' is already taken");
            return;
        }

        strategies.Add(definition);
        PluginLog.StrategyLoaded(logger, definition.Name, type.FullName!, Path.GetFileName(path));
    }

    private static StrategyDefinition DefinitionOf<T>()
        where T : class, ISearchStrategy<T> => T.Definition;

    private sealed class PluginLoadContext(string pluginPath) : AssemblyLoadContext(Path.GetFileNameWithoutExtension(pluginPath))
    {
        private readonly AssemblyDependencyResolver _resolver = new(pluginPath);

        protected override Assembly? Load(AssemblyName assemblyName)
        {
            // Share what the host already has (the contracts, the framework); anything else comes from beside the plug-in.
            if (Default.Assemblies.Any(a => AssemblyName.ReferenceMatchesDefinition(a.GetName(), assemblyName)))
            {
                return null;
            }

            var path = _resolver.ResolveAssemblyToPath(assemblyName);
            return path is null ? null : LoadFromAssemblyPath(path);
        }
    }
}

internal static partial class PluginLog
{
    [LoggerMessage(EventId = 2001, Level = LogLevel.Information, Message = "Loaded verifier plug-in '{Verifier}' ({Type}) from {Assembly}")]
    public static partial void VerifierLoaded(ILogger logger, string verifier, string type, string assembly);

    [LoggerMessage(EventId = 2002, Level = LogLevel.Error, Message = "Skipped plug-in assembly {Assembly}: {Reason}")]
    public static partial void AssemblySkipped(ILogger logger, string assembly, string reason);

    [LoggerMessage(EventId = 2003, Level = LogLevel.Error, Message = "Skipped verifier plug-in {Type}: its constructor threw: {Reason}")]
    public static partial void VerifierSkipped(ILogger logger, string type, string reason);

    [LoggerMessage(EventId = 2004, Level = LogLevel.Information, Message = "Loaded strategy plug-in '{Strategy}' ({Type}) from {Assembly}")]
    public static partial void StrategyLoaded(ILogger logger, string strategy, string type, string assembly);

    [LoggerMessage(EventId = 2005, Level = LogLevel.Error, Message = "Skipped strategy plug-in {Type}: {Reason}")]
    public static partial void StrategySkipped(ILogger logger, string type, string reason);
}
