using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using SearchOrchestrator.Onnx.Repository;
using SearchOrchestrator.Search;
using SearchOrchestrator.Strategies;
using SearchOrchestrator.Tensors;
using SearchOrchestrator.Verifiers;
using SearchOrchestrator.Tests;

namespace SearchOrchestrator.Server.Tests;

public sealed class SearchOrchestratorServiceCollectionExtensionsTests
{
    private static IHost Build(Dictionary<string, string?> settings)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Configuration.AddInMemoryCollection(settings);
        builder.Services.AddLogging();
        builder.Services.AddSearchOrchestrator();
        return builder.Build();
    }

    [Fact]
    public async Task StartAsync_ConfiguredRepository_LoadsEveryModelBeforeStarted()
    {
        using var host = Build(new() { ["Models:Path"] = RepositoryPaths.Models, ["Models:ExecutionProvider"] = "cpu" });

        await host.StartAsync();

        var repository = host.Services.GetRequiredService<ModelRepository>();
        Assert.NotEmpty(repository.Models);
        Assert.All(repository.Models, m => Assert.True(m.IsReady, m.Error));
        await host.StopAsync();
    }

    [Fact]
    public async Task StartAsync_BadSettings_FailsNamingEverySetting()
    {
        using var host = Build(new()
        {
            ["Models:Path"] = RepositoryPaths.Models,
            ["Models:ExecutionProvider"] = "tpu",
            ["Models:IntraOpThreads"] = "-4",
        });

        var ex = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync());

        Assert.Contains("Models:ExecutionProvider must be one of auto, cpu, cuda, tensorrt, got 'tpu'.", ex.Failures);
        Assert.Contains("Models:IntraOpThreads must be >= 0 (0 = the cores divided among the instances), got -4.", ex.Failures);
    }

    [Fact]
    public async Task StartAsync_WithPlugins_EngineSearchesWithRepositoryAndPluginVerifiers()
    {
        using var host = Build(new()
        {
            ["Models:Path"] = RepositoryPaths.Models,
            ["Models:ExecutionProvider"] = "cpu",
            ["Verifiers:Path"] = Plugins.PluginLoaderTests.SamplePluginFolder,
            ["Batching:MaxBatchSize"] = "16",
        });
        await host.StartAsync();
        var engine = host.Services.GetRequiredService<SearchEngine>();

        var result = await engine.RunAsync(new SearchRequest
        {
            Model = "counting",
            Condition = "3",
            Steps = 8,
            Guidance = 2,
            Strategy = new BestOfNStrategy(2),
            Verifiers = ["count-verifier", "object-counter", "mirror-symmetry"],
        });

        Assert.Equal(["count-verifier", "mirror-symmetry", "object-counter"], result.Candidates[0].Scores.Keys.Order());
        Assert.Equal(16, result.Cost.Nfe);
        await host.StopAsync();
    }

    [Fact]
    public async Task StartAsync_WithStrategyPlugin_CatalogBuildsItByNameAndTheEngineRunsIt()
    {
        using var host = Build(new()
        {
            ["Models:Path"] = RepositoryPaths.Models,
            ["Models:ExecutionProvider"] = "cpu",
            ["Verifiers:Path"] = Plugins.PluginLoaderTests.SampleStrategyFolder,
        });
        await host.StartAsync();
        var strategies = host.Services.GetRequiredService<StrategyCatalog>();
        var engine = host.Services.GetRequiredService<SearchEngine>();

        var result = await engine.RunAsync(new SearchRequest
        {
            Model = "counting",
            Condition = "3",
            Steps = 8,
            Eta = 0.5,
            Strategy = strategies.Create("successive_halving", new Dictionary<string, string> { ["n"] = "4", ["evaluate_at"] = "2,4" }, 8),
            Verifiers = ["count-verifier"],
        });

        Assert.Equal("successive_halving", result.Strategy);
        Assert.Equal((4 * 2) + (2 * 2) + (1 * 4), result.Cost.Nfe);
        Assert.Equal([.. StrategyNames.All, "successive_halving"], strategies.Definitions.Select(d => d.Name));
        await host.StopAsync();
    }

    [Fact]
    public async Task StartAsync_ShippedRepository_ServesCompositionJudgeAndTheFamilyVerifierByName()
    {
        using var host = Build(new() { ["Models:Path"] = RepositoryPaths.Models, ["Models:ExecutionProvider"] = "cpu" });
        await host.StartAsync();
        var models = host.Services.GetRequiredService<IModelProvider>();
        var judge = models.GetVerifier("composition-judge");
        // Two drawn scenes (from the judge's fixtures) against their own caption and a caption one object off.
        var image = SceneOfThreeRedCirclesAndTwoBlueSquares();

        var scores = await judge.ScoreAsync(new VerifierBatch(new SampleShape(3, 32, 32), image.Concat(image).ToArray(), ["three red circles and two blue squares", "four red circles and two blue squares"]));

        Assert.Equal([0f, -1f], scores);
        Assert.Equal("shapes-t2i-verifier", models.GetVerifier("shapes-t2i-verifier").Name);
        Assert.Contains("composition-judge", Assert.IsType<ModelCatalog>(models).CodeVerifiers);
        await host.StopAsync();
    }

    [Fact]
    public async Task StartAsync_BadBatchingSetting_FailsNamingIt()
    {
        using var host = Build(new() { ["Models:Path"] = RepositoryPaths.Models, ["Batching:MaxBatchSize"] = "1" });

        var ex = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync());

        Assert.Contains("Batching:MaxBatchSize must be at least 2 (a guided step takes two rows), got 1.", ex.Failures);
    }

    [Fact]
    public async Task StartAsync_VerifierAddedInCode_EngineScoresWithItByName()
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?> { ["Models:Path"] = RepositoryPaths.Models, ["Models:ExecutionProvider"] = "cpu" });
        builder.Services.AddLogging();
        builder.Services.AddSearchOrchestrator().AddVerifier<ConstantVerifier>();
        using var host = builder.Build();
        await host.StartAsync();
        var engine = host.Services.GetRequiredService<SearchEngine>();

        var result = await engine.RunAsync(new SearchRequest
        {
            Model = "counting",
            Condition = "3",
            Steps = 4,
            Strategy = new BestOfNStrategy(2),
            Verifiers = [ConstantVerifier.VerifierName],
        });

        Assert.Equal(0.25f, result.Candidates[0].Scores[ConstantVerifier.VerifierName]);
        Assert.Equal(2, result.Cost.VerifierCalls);
        await host.StopAsync();
    }

    [Fact]
    public async Task StartAsync_TwoStrategiesWithOneName_FailsBeforeStartedNamingIt()
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?> { ["Models:Path"] = RepositoryPaths.Models, ["Models:ExecutionProvider"] = "cpu" });
        builder.Services.AddLogging();
        builder.Services.AddSearchOrchestrator().AddStrategy<Strategies.RootsStrategy>().AddStrategy<Strategies.RootsStrategy>();
        using var host = builder.Build();

        var ex = await Assert.ThrowsAsync<ArgumentException>(() => host.StartAsync());

        Assert.StartsWith($"Two strategies are registered as '{Strategies.RootsStrategy.StrategyName}'; strategy names must be unique.", ex.Message);
    }

    [Fact]
    public void AddSearchOrchestrator_CalledTwice_RegistersOnce()
    {
        var services = new ServiceCollection();

        services.AddSearchOrchestrator();
        services.AddSearchOrchestrator();

        Assert.Single(services, d => d.ServiceType == typeof(ModelRepository));
        Assert.Single(services, d => d.ServiceType == typeof(IHostedService));
    }

    /// <summary>A verifier registered in code: every sample scores 0.25.</summary>
    private sealed class ConstantVerifier : IVerifier
    {
        public const string VerifierName = "test-constant";

        public string Name => VerifierName;

        public Task<float[]> ScoreAsync(VerifierBatch batch, CancellationToken cancellationToken = default) =>
            Task.FromResult(Enumerable.Repeat(0.25f, batch.Count).ToArray());
    }

    /// <summary>The judge fixtures' third scene (models/training/make_composition_fixtures.py): three red circles and two blue squares, no noise.</summary>
    private static float[] SceneOfThreeRedCirclesAndTwoBlueSquares()
    {
        using var document = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(RepositoryPaths.Root, "tests", "SearchOrchestrator.Core.Tests", "Verifiers", "Fixtures", "compositions.json")));
        var scene = document.RootElement.GetProperty("cases")[2];
        Assert.Equal("three red circles and two blue squares", scene.GetProperty("caption").GetString());
        var rgb = Convert.FromBase64String(scene.GetProperty("rgb").GetString()!);
        var image = new float[rgb.Length];
        for (var p = 0; p < rgb.Length / 3; p++)
        {
            for (var c = 0; c < 3; c++)
            {
                image[(c * (rgb.Length / 3)) + p] = (rgb[(3 * p) + c] / 127.5f) - 1f;
            }
        }

        return image;
    }
}
