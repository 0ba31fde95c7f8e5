using System.Reflection;

namespace SearchOrchestrator.Tests;

/// <summary>Paths into the repository this test assembly was built from.</summary>
internal static class RepositoryPaths
{
    /// <summary>The repository root (from the build's RepositoryRoot metadata).</summary>
    public static string Root { get; } = typeof(RepositoryPaths).Assembly
        .GetCustomAttributes<AssemblyMetadataAttribute>()
        .Single(a => a.Key == "RepositoryRoot").Value!;

    /// <summary>The shipped model repository.</summary>
    public static string Models => Path.Combine(Root, "models");
}
