using Microsoft.Extensions.Logging.Abstractions;
using SearchOrchestrator.Search;
using SearchOrchestrator.Server.Plugins;
using SearchOrchestrator.Strategies;
using SearchOrchestrator.Tensors;
using SearchOrchestrator.Tests;
using SearchOrchestrator.Verifiers;

namespace SearchOrchestrator.Server.Tests.Plugins;

public sealed class PluginLoaderTests : IDisposable
{
    private readonly DirectoryInfo _folder = Directory.CreateTempSubdirectory("searchorch-plugins-");

    /// <summary>The sample verifier plug-in's build output, in the configuration this test was built with.</summary>
    public static string SamplePluginFolder => SampleFolder("CustomVerifier");

    /// <summary>The sample strategy plug-in's build output.</summary>
    public static string SampleStrategyFolder => SampleFolder("StrategyPlugin");

    private static string SampleFolder(string sample)
    {
        var configuration = AppContext.BaseDirectory.Contains($"{Path.DirectorySeparatorChar}Release{Path.DirectorySeparatorChar}", StringComparison.Ordinal) ? "Release" : "Debug";
        return Path.Combine(RepositoryPaths.Root, "samples", sample, "bin", configuration, "net10.0");
    }

    public void Dispose() => _folder.Delete(recursive: true);

    [Fact]
    public async Task Load_SamplePlugin_FindsAWorkingVerifier()
    {
        var verifiers = PluginLoader.Load(SamplePluginFolder, NullLogger.Instance).Verifiers;

        var symmetry = Assert.Single(verifiers);
        Assert.Equal("mirror-symmetry", symmetry.Name);
        float[] symmetric = [1, 0, 0, 1, -1, 2, 2, -1];
        float[] lopsided = [1, 0, 0, 0, -1, 2, 0, 0];
        var scores = await symmetry.ScoreAsync(new VerifierBatch(new SampleShape(1, 2, 4), symmetric.Concat(lopsided).ToArray(), ["1", "1"]));
        Assert.Equal(0f, scores[0]);
        Assert.Equal(-1f, scores[1]);
    }

    [Fact]
    public void Load_SampleStrategyPlugin_FindsItsDefinitionAndItsExactPlan()
    {
        var plugins = PluginLoader.Load(SampleStrategyFolder, NullLogger.Instance);

        Assert.Empty(plugins.Verifiers);
        var definition = Assert.Single(plugins.Strategies);
        Assert.Equal("successive_halving", definition.Name);
        Assert.Equal("n=8, evaluate_at=N/4,N/2,3N/4", definition.ParameterList);
        var strategy = new StrategyCatalog([.. StrategyCatalog.BuiltIns, definition]).Create("successive_halving", new Dictionary<string, string>(), 40);
        strategy.Validate(40);
        var plan = strategy.Plan(new PlanContext(40, ForkRenoiseSteps: 1));
        // 8 trajectories to step 10, 4 to 20, 2 to 30, 1 to 40.
        Assert.Equal(NfeRange.Exactly((8 * 10) + (4 * 10) + (2 * 10) + (1 * 10)), plan.Nfe);
    }

    [Fact]
    public void Load_FolderWithABrokenAssembly_SkipsItAndLoadsTheRest()
    {
        foreach (var file in Directory.GetFiles(SamplePluginFolder))
        {
            File.Copy(file, Path.Combine(_folder.FullName, Path.GetFileName(file)));
        }

        File.WriteAllText(Path.Combine(_folder.FullName, "Broken.dll"), "not an assembly");

        var verifiers = PluginLoader.Load(_folder.FullName, NullLogger.Instance).Verifiers;

        Assert.Equal(["mirror-symmetry"], verifiers.Select(v => v.Name));
    }

    [Fact]
    public void Load_MissingFolder_ThrowsNamingTheSetting()
    {
        var ex = Assert.Throws<DirectoryNotFoundException>(() => PluginLoader.Load("/nonexistent-plugins", NullLogger.Instance));

        Assert.Contains("Verifiers:Path", ex.Message);
    }
}
