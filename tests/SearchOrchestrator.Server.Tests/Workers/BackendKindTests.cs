using System.Net;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using SearchOrchestrator.Links;
using SearchOrchestrator.Scheduling;
using SearchOrchestrator.Search;
using SearchOrchestrator.Server.Backends;
using SearchOrchestrator.Server.Discovery;
using SearchOrchestrator.Server.Workers;
using SearchOrchestrator.Strategies;
using SearchOrchestrator.Tests;
using SearchOrchestrator.Workers;

namespace SearchOrchestrator.Server.Tests.Workers;

/// <summary>A backend kind defined only here, added through the public registration alone.</summary>
public sealed class BackendKindTests
{
    private static SearchRequest Request() => new()
    {
        Model = "counting",
        Condition = "3",
        Steps = 8,
        Guidance = 2,
        Eta = 0.5,
        Seed = 7,
        Strategy = new BestOfNStrategy(3),
        Verifiers = ["count-verifier"],
    };

    [Fact]
    public async Task AddBackendKind_InMemoryKindWithLocalComputeOff_RunsEveryStepThereWithTheLocalResult()
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Models:Path"] = RepositoryPaths.Models,
            ["Models:ExecutionProvider"] = "cpu",
            ["Workers:UseLocal"] = "false",
        });
        builder.Services.AddLogging();
        builder.Services.AddSearchOrchestrator().AddBackendKind<InMemoryBackendFactory>();
        using var host = builder.Build();
        await host.StartAsync();
        var joined = await host.Services.GetRequiredService<PoolMembership>().JoinAsync(new BackendEndpoint(InMemoryBackendFactory.KindName, "memory://one"));
        var backend = Assert.IsType<InMemoryBackend>(joined);

        var placed = await host.Services.GetRequiredService<SearchEngine>().RunAsync(Request());
        var local = await new SearchEngine(host.Services.GetRequiredService<IModelProvider>()).RunAsync(Request());

        Assert.Equal(3 * 8, placed.Cost.Nfe);
        Assert.Equal(3 * 8, backend.Steps); // local compute is off: every step ran on the plug-in's backend
        Assert.Equal(local.Candidates.Select(c => c.Path), placed.Candidates.Select(c => c.Path));
        Assert.All(placed.Candidates.Zip(local.Candidates), pair => Assert.Equal(pair.Second.Sample, pair.First.Sample));
        await host.StopAsync();
    }

    [Fact]
    public async Task JoinAsync_UnregisteredKind_IsRefusedNamingTheRegisteredKinds()
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?> { ["Models:Path"] = RepositoryPaths.Models, ["Models:ExecutionProvider"] = "cpu" });
        builder.Services.AddSearchOrchestrator();
        using var host = builder.Build();

        var refused = await Assert.ThrowsAsync<WorkerRefusedException>(() => host.Services.GetRequiredService<PoolMembership>().JoinAsync(new BackendEndpoint(InMemoryBackendFactory.KindName, "memory://one")));

        Assert.Equal("worker memory://one refused: its kind 'in-memory' is not registered here; registered: worker.", refused.Message);
    }

    [Fact]
    public async Task AddDnsDiscovery_InMemoryKind_JoinsEachDiscoveredAddressAsThatKindAndPlacesSearchesThere()
    {
        using var host = DiscoveringHost(InMemoryBackendFactory.KindName);
        await host.StartAsync();
        await host.Services.GetRequiredService<DiscoveryPoolFeed>().Idle;

        var backends = host.Services.GetRequiredService<WorkerPool>().Backends.OfType<InMemoryBackend>().OrderBy(b => b.Name, StringComparer.Ordinal).ToList();
        var placed = await host.Services.GetRequiredService<SearchEngine>().RunAsync(Request());

        Assert.Equal(["http://10.0.0.7:7001", "http://10.0.0.8:7001"], backends.Select(b => b.Name));
        Assert.Equal(3 * 8, placed.Cost.Nfe);
        Assert.Equal(3 * 8, backends.Sum(b => b.Steps)); // local compute is off: every step ran on a discovered backend
        await host.StopAsync();
    }

    [Fact]
    public async Task AddDnsDiscovery_KindNotRegistered_StopsTheStartNamingTheRegisteredKinds()
    {
        using var host = DiscoveringHost("triton");

        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync());

        Assert.Equal(["Discovery:Dns:Kind: must be in-memory or worker, got 'triton'."], error.Failures);
    }

    /// <summary>A host with the in-memory kind and DNS discovery of <paramref name="kind"/> behind a name that resolves to two addresses.</summary>
    private static IHost DiscoveringHost(string kind)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Models:Path"] = RepositoryPaths.Models,
            ["Models:ExecutionProvider"] = "cpu",
            ["Workers:UseLocal"] = "false",
            ["Discovery:Dns:Name"] = "memory.test",
            ["Discovery:Dns:Port"] = "7001",
            ["Discovery:Dns:Scheme"] = "http",
            ["Discovery:Dns:Kind"] = kind,
        });
        builder.Services.AddLogging();
        builder.Services.AddSingleton<DnsResolver>((_, _) => Task.FromResult<IPAddress[]>([IPAddress.Parse("10.0.0.8"), IPAddress.Parse("10.0.0.7")]));
        builder.Services.AddSearchOrchestrator().AddBackendKind<InMemoryBackendFactory>().AddDnsDiscovery();
        return builder.Build();
    }

    /// <summary>Connects in-memory backends over this process's models.</summary>
    private sealed class InMemoryBackendFactory(IModelProvider models) : IBackendFactory
    {
        public const string KindName = "in-memory";

        public string Kind => KindName;

        public Task<IPooledBackend> ConnectAsync(BackendEndpoint endpoint, CancellationToken cancellationToken = default) =>
            Task.FromResult<IPooledBackend>(new InMemoryBackend(endpoint.Address, models));
    }

    /// <summary>A fake transport: the steps run on a batcher of its own over this process's denoiser.</summary>
    private sealed class InMemoryBackend(string name, IModelProvider models) : IPooledBackend
    {
        private readonly Dictionary<string, DenoiserBatcher> _batchers = new(StringComparer.Ordinal);
        private int _steps;

        public int Steps => Volatile.Read(ref _steps);

        public string Name => name;

        public string Kind => InMemoryBackendFactory.KindName;

        public bool IsAvailable => true;

        public int QueuedRows => 0;

        public int MaxBatchSize => 16;

        public ComputeCostModel Compute { get; } = new(TimeSpan.FromMilliseconds(1), TimeSpan.FromMilliseconds(1));

        public LinkCostModel? Link => null;

        public StepTraffic StepTraffic => default; // in this process: nothing crosses a link

        public IResidentStates? ResidentStates => null;

        public string? LastFailure => null;

        public bool Hosts(string model) => model == "counting";

        public Task<bool> CheckHealthAsync(CancellationToken cancellationToken = default) => Task.FromResult(true);

        public async Task<StepOutcome> StepAsync(StepRequest step, TrajectorySettings settings, CancellationToken cancellationToken = default)
        {
            DenoiserBatcher batcher;
            lock (_batchers)
            {
                if (!_batchers.TryGetValue(settings.Model, out batcher!))
                {
                    _batchers[settings.Model] = batcher = new DenoiserBatcher(models.GetDenoiser(settings.Model), new BatchingOptions { MaxBatchSize = MaxBatchSize });
                }
            }

            var timing = await batcher.StepAsync(step, cancellationToken);
            Interlocked.Increment(ref _steps);
            return new StepOutcome(timing, default);
        }

        public async ValueTask DisposeAsync()
        {
            foreach (var batcher in _batchers.Values)
            {
                await batcher.DisposeAsync();
            }
        }
    }
}
