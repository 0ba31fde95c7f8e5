using System.Reflection;
using System.Runtime.Loader;
using Microsoft.Extensions.Logging;
using SearchOrchestrator.Verifiers;

namespace SearchOrchestrator.Server.Plugins;

/// <summary>
/// Loads C# verifier plug-ins: every public, non-abstract <see cref="IVerifier"/> with a parameterless constructor in
/// the assemblies of a folder. Each assembly gets its own load context that shares the host's SearchOrchestrator and
/// framework assemblies (so <see cref="IVerifier"/> is one type) and resolves the plug-in's own dependencies beside it.
/// An assembly that fails to load, or a verifier whose constructor throws, is logged and skipped.
/// </summary>
public static class VerifierPluginLoader
{
    /// <summary>Loads every verifier plug-in in <paramref name="folder"/>.</summary>
    /// <exception cref="DirectoryNotFoundException">The folder does not exist.</exception>
    public static IReadOnlyList<IVerifier> Load(string folder, ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(folder);
        ArgumentNullException.ThrowIfNull(logger);
        var root = Path.GetFullPath(folder);
        if (!Directory.Exists(root))
        {
            throw new DirectoryNotFoundException($"The verifier plug-in folder '{root}' does not exist; set {VerifierPluginOptions.SectionName}:Path (or --plugins) to a folder of plug-in assemblies.");
        }

        var verifiers = new List<IVerifier>();
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

            foreach (var type in types.Where(t => typeof(IVerifier).IsAssignableFrom(t) && t is { IsAbstract: false, IsInterface: false } && t.GetConstructor(Type.EmptyTypes) is not null))
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
        }

        return verifiers;
    }

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

/// <summary>Where verifier plug-ins are loaded from (configuration section <c>Verifiers</c>).</summary>
public sealed record VerifierPluginOptions
{
    /// <summary>The configuration section these options bind from.</summary>
    public const string SectionName = "Verifiers";

    /// <summary>A folder of plug-in assemblies; null or empty (the default) loads none.</summary>
    public string? Path { get; init; }
}

internal static partial class PluginLog
{
    [LoggerMessage(EventId = 2001, Level = LogLevel.Information, Message = "Loaded verifier plug-in '{Verifier}' ({Type}) from {Assembly}")]
    public static partial void VerifierLoaded(ILogger logger, string verifier, string type, string assembly);

    [LoggerMessage(EventId = 2002, Level = LogLevel.Error, Message = "Skipped plug-in assembly {Assembly}: {Reason}")]
    public static partial void AssemblySkipped(ILogger logger, string assembly, string reason);

    [LoggerMessage(EventId = 2003, Level = LogLevel.Error, Message = "Skipped verifier plug-in {Type}: its constructor threw: {Reason}")]
    public static partial void VerifierSkipped(ILogger logger, string type, string reason);
}
