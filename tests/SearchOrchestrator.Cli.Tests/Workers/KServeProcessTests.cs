using System.Globalization;
using System.Net;
using Grpc.Core;
using Grpc.Net.Client;
using SearchOrchestrator.Onnx.Manifests;
using SearchOrchestrator.Onnx.Repository;
using SearchOrchestrator.Protos.Inference;
using SearchOrchestrator.Search;
using SearchOrchestrator.Server.Backends;
using SearchOrchestrator.Server.Discovery;
using SearchOrchestrator.Server.OpenInference;
using SearchOrchestrator.Server.Workers;
using SearchOrchestrator.Strategies;
using SearchOrchestrator.Tests;
using SearchOrchestrator.Verifiers;
using SearchOrchestrator.Workers;

namespace SearchOrchestrator.Cli.Tests.Workers;

/// <summary>
/// The <c>kserve</c> backend against real <c>searchorch worker</c> processes serving the Open Inference Protocol on
/// loopback: connect and measure, a search run entirely on them, refusal of mismatched metadata, an endpoint killed
/// mid-search, the orchestrator host configured by name, and DNS discovery joining one.
/// </summary>
public sealed class KServeProcessTests : TwoWorkerProcesses
{
    [Fact]
    public async Task ModelMetadata_OnTheWorker_NeedsItsSecret()
    {
        using var channel = GrpcChannel.ForAddress(First.Url);
        var client = new GRPCInferenceService.GRPCInferenceServiceClient(channel);

        var refused = await Assert.ThrowsAsync<RpcException>(async () => await client.ModelMetadataAsync(new ModelMetadataRequest { Name = "counting" }));
        var metadata = await client.ModelMetadataAsync(new ModelMetadataRequest { Name = "counting" }, new Metadata { { "x-api-key", Secret } });

        Assert.Equal(StatusCode.Unauthenticated, refused.StatusCode);
        var manifest = Manifest("counting")!;
        Assert.Equal([manifest.Inputs!["sample"].Name, manifest.Inputs["time"].Name, manifest.Inputs["condition"].Name], metadata.Inputs.Select(i => i.Name));
    }

    [Fact]
    public async Task ConnectAsync_RealWorker_ChecksTheModelAndMeasuresLinkAndCompute()
    {
        await using var backend = await KServeBackend.ConnectAsync(Endpoint(First.Url), Manifest, PoolOptions());

        Assert.Equal(BackendKinds.KServe, backend.Kind);
        Assert.True(backend.Hosts("counting"));
        Assert.False(backend.Hosts("count-verifier"));
        var fit = backend.Link.Fit;
        Assert.Equal(3, fit.Samples); // ServerLive (~0 B) and probes of 256 KiB and 1 MiB; the fit keeps the fastest of each
        Assert.True(fit.SecondsPerByte > 0, "a larger probe takes longer");
        Assert.Equal(2, backend.Compute.Samples); // passes of 1 and 8 rows, after a warm-up each
        // The fit passes through both measured passes, so it predicts a real time for 8 rows (which of 1 and 8 rows is
        // faster is a timing question a loaded machine can flip; the bench measures it, not this test).
        Assert.True(backend.Compute.Predict(8) > TimeSpan.Zero);
        Assert.True(await backend.CheckHealthAsync());
    }

    [Fact]
    public async Task ConnectAsync_MetadataDiffersFromOurManifest_RefusesNamingTheTensor()
    {
        // Our copy of the model takes one more column than the served one (sample and prediction alike).
        var ours = Manifest("counting")!;
        var sample = ours.Inputs!["sample"];
        var prediction = ours.Outputs!["prediction"];
        var shape = sample.Shape!.ToArray();
        shape[^1]++;
        var changed = ours with
        {
            Inputs = new Dictionary<string, TensorSpec>(ours.Inputs) { ["sample"] = sample with { Shape = shape } },
            Outputs = new Dictionary<string, TensorSpec>(ours.Outputs) { ["prediction"] = prediction with { Shape = shape } },
        };

        var refused = await Assert.ThrowsAsync<WorkerRefusedException>(() =>
            KServeBackend.ConnectAsync(Endpoint(First.Url), name => name == "counting" ? changed : Manifest(name), PoolOptions()));

        Assert.Contains($"input '{sample.Name}' (our sample): shape", refused.Message, StringComparison.Ordinal);
        Assert.Contains($"output '{prediction.Name}' (our prediction): shape", refused.Message, StringComparison.Ordinal);
        Assert.Contains(First.Url, refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ConnectAsync_MappedTensorTheServerLacks_RefusesNamingIt()
    {
        var options = Endpoint(First.Url);
        options.Models["counting"].Tensors["time"] = "timestep";

        var refused = await Assert.ThrowsAsync<WorkerRefusedException>(() => KServeBackend.ConnectAsync(options, Manifest, PoolOptions()));

        Assert.Contains("input 'timestep' (our time): the remote model has no such input", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ConnectAsync_MaskedModel_IsRefusedNamingIt()
    {
        var options = new KServeEndpointOptions { Endpoint = First.Url, ApiKey = Secret, Models = { ["sudoku"] = new KServeModelOptions() } };

        var refused = await Assert.ThrowsAsync<WorkerRefusedException>(() => KServeBackend.ConnectAsync(options, Manifest, PoolOptions()));

        Assert.Contains("model 'sudoku' is a masked model; the kserve backend runs gaussian denoisers", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RunAsync_OnKServeBackendsOnly_MatchesTheLocalResult()
    {
        var reference = await new SearchEngine(Models).RunAsync(Request());
        await using var pool = Pool();
        var backend = await KServeBackend.ConnectAsync(Endpoint(First.Url), Manifest, pool.Options);
        Assert.True(pool.Add(backend));
        await using var engine = new SearchEngine(Models, workers: pool);

        var result = await engine.RunAsync(Request());

        AssertSameCandidates(reference, result, 1e-5);
        Assert.Equal(reference.Cost.Nfe, result.Cost.Nfe);
        Assert.Equal(0, result.Cost.ReplayNfe);
        var link = Assert.Single(result.Cost.Links);
        Assert.Equal(First.Url, link.Link);
        // Stateless: every step ships its state (and its guided twin) and gets the prediction back.
        var stateBytes = Manifest("counting")!.Inputs!["sample"].Shape!.Skip(1).Aggregate(1L, (a, b) => a * b) * sizeof(float);
        Assert.True(link.BytesSent >= reference.Cost.Nfe * 2 * stateBytes, $"sent {link.BytesSent} B");
        Assert.True(link.BytesReceived >= reference.Cost.Nfe * 2 * stateBytes, $"received {link.BytesReceived} B");
        Assert.True(link.TransferTime > TimeSpan.Zero);
    }

    [Fact]
    public async Task RunAsync_KServeEndpointKilledMidSearch_RerunsItsStepsElsewhereWithTheSameResult()
    {
        var reference = await new SearchEngine(Models).RunAsync(Request(steps: 50));
        await using var pool = Pool();
        foreach (var url in new[] { First.Url, Second.Url })
        {
            Assert.True(pool.Add(await KServeBackend.ConnectAsync(Endpoint(url), Manifest, pool.Options)));
        }

        await using var engine = new SearchEngine(Models, workers: pool);
        var before = pool.StatelessBackends.ToDictionary(b => b.Name, b => b.Link!.Usage.Calls);

        var run = engine.Start(Request(steps: 50));
        IStatelessBackend? holder = null;
        while (holder is null && !run.Completion.IsCompleted)
        {
            await Task.Delay(2);
            holder = pool.StatelessBackends.FirstOrDefault(b => b.Link!.Usage.Calls > before[b.Name] + 5);
        }

        Assert.NotNull(holder);
        var victim = holder.Name == First.Url ? First : Second;
        victim.Kill();
        var result = await run.Completion;

        AssertSameCandidates(reference, result, 1e-5);
        Assert.Equal(reference.Cost.Nfe, result.Cost.Nfe);
        Assert.False(holder.IsAvailable, "the killed endpoint left the rotation");
        var survivor = pool.StatelessBackends.Single(b => b != holder);
        Assert.Contains(result.Cost.Links, l => l.Link == survivor.Name && l.Calls > 0);
        Assert.False(await holder.CheckHealthAsync());
    }

    [Fact]
    public async Task Serve_WithKServeBackendsConfiguredByName_RunsTheSearchOnThem()
    {
        var app = Server.SearchOrchestratorServer.Build(["--urls", "http://127.0.0.1:0", "--models", RepositoryPaths.Models, "--Models:ExecutionProvider", "cpu",
            "--Workers:UseLocal", "false", "--Logging:LogLevel:Default", "Warning",
            "--Backends:KServe:0:Endpoint", First.Url, "--Backends:KServe:0:ApiKey", Secret, "--Backends:KServe:0:Models:counting:RemoteName", "counting"]);
        await app.StartAsync();
        try
        {
            var pool = (WorkerPool)app.Services.GetService(typeof(WorkerPool))!;
            // The hosted service joins the configured server in the background once the host has started.
            using var joining = new CancellationTokenSource(TimeSpan.FromMinutes(1));
            while (pool.StatelessBackends.Count == 0)
            {
                await Task.Delay(10, joining.Token);
            }

            var engine = (SearchEngine)app.Services.GetService(typeof(SearchEngine))!;
            var result = await engine.RunAsync(Request());

            AssertSameCandidates(await new SearchEngine(Models).RunAsync(Request()), result, 1e-5);
            Assert.Equal([First.Url], result.Cost.Links.Select(l => l.Link));
        }
        finally
        {
            await app.StopAsync();
            await app.DisposeAsync();
        }
    }

    [Fact]
    public async Task DiscoveryPoolFeed_KindKServe_JoinsTheDiscoveredWorkerAndRemovesItWhenItLeaves()
    {
        var port = new Uri(Second.Url).Port;
        var answers = new Queue<IPAddress[]>([[IPAddress.Loopback], []]);
        var options = new DnsDiscoveryOptions { Name = "kserve.test", Port = port, Scheme = "http", Kind = BackendKinds.KServe, KServe = Endpoint("http://unused:1") };
        using var discovery = new DnsDiscovery(options, (_, _) => Task.FromResult(answers.Count > 1 ? answers.Dequeue() : answers.Peek()));
        await using var pool = Pool();
        using var feed = new DiscoveryPoolFeed(discovery, new PoolMembership(pool, Manifest), options);

        await discovery.RefreshAsync();
        await feed.Idle;
        var joined = pool.StatelessBackends.Select(b => (b.Name, b.Kind)).ToList();
        await discovery.RefreshAsync();
        await feed.Idle;

        Assert.Equal([($"http://127.0.0.1:{port}", BackendKinds.KServe)], joined);
        Assert.Empty(pool.StatelessBackends);
        Assert.Empty(feed.Joined);
    }

    private static KServeEndpointOptions Endpoint(string url) => new()
    {
        Endpoint = url,
        ApiKey = Secret,
        Models = { ["counting"] = new KServeModelOptions() },
    };

    private static WorkerOptions PoolOptions() => new() { Mode = WorkerModes.Stateless, UseLocal = false, ProbeSizes = [0, 262144, 1048576], ProbeRepeats = 3 };

    private WorkerPool Pool() => new((endpoint, session) => new GrpcWorkerClient(endpoint, session, Secret), LocalHash, PoolOptions());

    private static SearchRequest Request(int steps = 30) => new()
    {
        Model = "counting",
        Condition = "7",
        Steps = steps,
        Eta = 0.5,
        Guidance = 2,
        Seed = 11,
        Strategy = StrategyCatalog.BuiltIn.Create("shared_prefix", new Dictionary<string, string> { ["k"] = "4", ["fork_at"] = (steps / 2).ToString(CultureInfo.InvariantCulture) }, steps),
        Verifiers = ["count-verifier"],
        Candidates = 4,
    };
}
