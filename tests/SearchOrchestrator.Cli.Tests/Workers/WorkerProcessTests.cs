using Grpc.Core;
using Grpc.Net.Client;
using SearchOrchestrator.Onnx.Repository;
using SearchOrchestrator.Protos.Worker.V1;
using SearchOrchestrator.Search;
using SearchOrchestrator.Server.Workers;
using SearchOrchestrator.Strategies;
using SearchOrchestrator.Tests;
using SearchOrchestrator.Verifiers;
using SearchOrchestrator.Workers;

namespace SearchOrchestrator.Cli.Tests.Workers;

/// <summary>
/// Real <c>searchorch worker</c> processes on loopback, called through the real gRPC worker client: join, describe,
/// probe, stateless and resident steps, verification, refusals, and a worker killed or frozen mid-search.
/// </summary>
public sealed class WorkerProcessTests : TwoWorkerProcesses
{
    [Fact]
    public async Task JoinAsync_RealWorker_DescribesModelsAndFitsTheLink()
    {
        await using var pool = Pool(new WorkerOptions());

        var worker = await pool.JoinAsync(First.Url);

        Assert.Equal(WorkerPool.ProtocolVersion, worker.Description.ProtocolVersion);
        Assert.Contains(worker.Description.Models, m => m.Name == "counting" && m.Kind == "denoiser" && m.Sha256 == LocalHash("counting"));
        Assert.Contains(worker.Description.Models, m => m.Name == "count-verifier" && m.Kind == "verifier");
        Assert.Equal("cpu", worker.Description.ExecutionProvider);
        Assert.Equal(1, worker.Description.Threads); // the process was started with --Models:IntraOpThreads 1
        var fit = worker.Link!.Fit;
        Assert.Equal(3, fit.Samples); // three probe sizes (see Pool); the fit keeps the fastest of each
        Assert.True(fit.Predict(1 << 20) > TimeSpan.Zero, "moving a megabyte takes time");
        Assert.True(worker.Link.Usage.Bytes >= (0 + 65536 + 262144) * 2);
    }

    [Fact]
    public async Task JoinAsync_ModelHashDiffers_RefusesNamingTheModel()
    {
        await using var pool = Pool(new WorkerOptions(), name => name == "counting" ? new string('0', 64) : LocalHash(name));

        var refused = await Assert.ThrowsAsync<WorkerRefusedException>(() => pool.JoinAsync(First.Url));

        Assert.Contains("model 'counting'", refused.Message, StringComparison.Ordinal);
        Assert.Empty(pool.Workers);
    }

    [Fact]
    public async Task Call_WithoutTheSecret_IsUnauthenticated()
    {
        await using var client = new GrpcWorkerClient(First.Url, "s", secret: null);

        var failure = await Assert.ThrowsAsync<WorkerUnavailableException>(() => client.DescribeAsync());

        Assert.Contains("Unauthenticated", failure.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Register_WithWrongOrRightSecret_IsRefusedOrJoinsAndServesSearches()
    {
        var app = Server.SearchOrchestratorServer.Build(["--urls", "http://127.0.0.1:0", "--models", RepositoryPaths.Models, "--Models:ExecutionProvider", "cpu",
            "--Workers:Secret", Secret, "--Workers:UseLocal", "false", "--Logging:LogLevel:Default", "Warning"]);
        await app.StartAsync();
        try
        {
            using var channel = GrpcChannel.ForAddress(app.Urls.First());
            var registry = new WorkerRegistry.WorkerRegistryClient(channel);

            var refused = await Assert.ThrowsAsync<RpcException>(async () => await registry.RegisterAsync(new RegisterRequest { Endpoint = First.Url, Secret = "wrong" }));
            var joined = await registry.RegisterAsync(new RegisterRequest { Endpoint = First.Url, Secret = Secret });

            Assert.Equal(StatusCode.PermissionDenied, refused.StatusCode);
            Assert.Equal(First.Url, joined.Name);
            var pool = (WorkerPool)app.Services.GetService(typeof(WorkerPool))!;
            Assert.Equal([First.Url], pool.Workers.Select(w => w.Name));
            var search = new Protos.V1.Search.SearchClient(channel);
            var response = await search.GenerateAsync(new Protos.V1.GenerateRequest { Model = "counting", Condition = "3", Steps = 10, BestOfN = new Protos.V1.BestOfN { N = 2 } });
            var link = Assert.Single(response.Cost.Links);
            Assert.Equal(First.Url, link.Link);
            Assert.True(link.BytesSent > 0 && link.BytesReceived > 0 && link.Calls > 0);
            // The worker's own metrics, on its own port: the batches it ran for this search.
            using var http = new HttpClient();
            var metrics = await http.GetStringAsync(new Uri(new Uri(First.Url), "/metrics"));
            Assert.Matches("searchorch_batch_rows_count\\{[^}]*queue=\"counting\"[^}]*\\} [1-9]", metrics);
        }
        finally
        {
            await app.StopAsync();
            await app.DisposeAsync();
        }
    }

    [Fact]
    public async Task VerifyAsync_OnTheWorker_MatchesLocalScores()
    {
        await using var pool = Pool(new WorkerOptions());
        var worker = await pool.JoinAsync(First.Url);
        var local = await new SearchEngine(Models).RunAsync(Request(WorkerModes.Stateless, steps: 10) with { Strategy = StrategyCatalog.BuiltIn.Create("best_of_n", new Dictionary<string, string> { ["n"] = "3" }, 10), Candidates = 3 });
        var samples = local.Candidates.Select(c => c.Sample).ToList();

        var (scores, transfer) = await worker.VerifyAsync("count-verifier", "7", local.Candidates[0].Shape, samples);

        Assert.Equal(local.Candidates.Select(c => (double)c.Scores["count-verifier"]), scores.Select(s => (double)s), new Tolerance(1e-5));
        Assert.True(transfer.BytesSent >= samples.Sum(s => s.Length * sizeof(float)));
    }

    [Theory]
    [InlineData(WorkerModes.Stateless)]
    [InlineData(WorkerModes.Resident)]
    public async Task RunAsync_OnWorkersOnly_MatchesTheLocalResult(string mode)
    {
        var reference = await new SearchEngine(Models).RunAsync(Request(mode));
        await using var pool = Pool(new WorkerOptions { Mode = mode, UseLocal = false });
        await pool.JoinAsync(First.Url);
        await using var engine = new SearchEngine(Models, workers: pool);

        var result = await engine.RunAsync(Request(mode));

        AssertSameCandidates(reference, result, 1e-4);
        Assert.Equal(reference.Cost.Nfe, result.Cost.Nfe);
        // One entry per stage: resident nodes are scored on the worker, which hosts count-verifier.
        Assert.Equal(mode == WorkerModes.Resident ? [StageNames.Denoiser, StageNames.Verifier] : [StageNames.Denoiser], result.Cost.Links.Select(l => l.Stage));
        Assert.All(result.Cost.Links, l => Assert.Equal(First.Url, l.Link));
        var link = result.Cost.Links[0];
        Assert.True(link.Bytes > 0 && link.TransferTime > TimeSpan.Zero);
        Assert.Equal(0, result.Cost.ReplayNfe);
    }

    [Theory]
    [InlineData(WorkerModes.Stateless)]
    [InlineData(WorkerModes.Resident)]
    public async Task RunAsync_MaskedSudokuOnWorkersOnly_MatchesTheLocalResult(string mode)
    {
        var request = new SearchRequest
        {
            Model = "sudoku",
            Condition = "53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79",
            Steps = 12,
            Seed = 3,
            Sampler = new SearchOrchestrator.Processes.SamplerSettings("masked", [new("temperature", 0.7)], [new("remask", "confidence")]),
            Strategy = new SearchOverPathsStrategy(2, 2, 4, 2, 4),
            Verifiers = [SudokuVerifier.VerifierName],
            Candidates = 2,
        };
        var reference = await new SearchEngine(Models).RunAsync(request);
        await using var pool = Pool(new WorkerOptions { Mode = mode, UseLocal = false });
        await pool.JoinAsync(First.Url);
        await using var engine = new SearchEngine(Models, workers: pool);

        var result = await engine.RunAsync(request);

        AssertSameCandidates(reference, result, 1e-4);
        Assert.Equal(reference.Cost.Nfe, result.Cost.Nfe);
        Assert.True(Assert.Single(result.Cost.Links).Bytes > 0);
    }

    [Fact]
    public async Task RunAsync_ResidentMode_MovesFarFewerBytesThanStateless()
    {
        await using var stateless = Pool(new WorkerOptions { Mode = WorkerModes.Stateless, UseLocal = false });
        await using var resident = Pool(new WorkerOptions { Mode = WorkerModes.Resident, UseLocal = false });
        await stateless.JoinAsync(First.Url);
        await resident.JoinAsync(First.Url);
        await using var statelessEngine = new SearchEngine(Models, workers: stateless);
        await using var residentEngine = new SearchEngine(Models, workers: resident);

        var a = await statelessEngine.RunAsync(Request(WorkerModes.Stateless, steps: 50));
        var b = await residentEngine.RunAsync(Request(WorkerModes.Resident, steps: 50));

        AssertSameCandidates(a, b, 1e-4);
        Assert.True(a.Cost.Links.Sum(l => l.Bytes) >= 10 * b.Cost.Links.Sum(l => l.Bytes), $"stateless {a.Cost.Links.Sum(l => l.Bytes)} B vs resident {b.Cost.Links.Sum(l => l.Bytes)} B");
    }

    [Theory]
    [InlineData("KILL")] // dies at once
    [InlineData("TERM")] // drains: finishes the calls it is running, refuses new ones, exits
    public async Task RunAsync_WorkerKilledOrDrainedMidSearch_RecomputesElsewhereWithTheSameResult(string signal)
    {
        var reference = await new SearchEngine(Models).RunAsync(Request(WorkerModes.Resident, steps: 50, forkAt: 5));
        // Pinned (MoveMargin 1), so the nodes are still on the worker when it goes away.
        await using var pool = Pool(new WorkerOptions { Mode = WorkerModes.Resident, UseLocal = false, MoveMargin = 1 });
        await pool.JoinAsync(First.Url);
        await pool.JoinAsync(Second.Url);
        await using var engine = new SearchEngine(Models, workers: pool);
        var probes = pool.Workers.ToDictionary(w => w.Name, w => w.Link!.Usage.Calls);

        var run = engine.Start(Request(WorkerModes.Resident, steps: 50, forkAt: 5));
        // Once the fork has happened, the children live only on the worker until the search fetches them.
        while (run.Progress().Nodes < 2 && !run.Completion.IsCompleted)
        {
            await Task.Delay(2);
        }

        var holder = pool.Workers.Single(w => w.Link!.Usage.Calls > probes[w.Name]).Name;
        var victim = holder == First.Url ? First : Second;

        if (signal == "KILL")
        {
            victim.Kill();
        }
        else
        {
            victim.Signal(signal);
        }

        var result = await run.Completion;

        AssertSameCandidates(reference, result, 1e-4);
        Assert.True(result.Cost.ReplayNfe > 0, "the killed worker's nodes were recomputed");
        Assert.Equal(reference.Cost.Nfe, result.Cost.Nfe);
    }

    [Fact]
    public async Task RunAsync_WorkerFrozenPastItsDeadline_IsCutOffAndTheResultIsTheSame()
    {
        var reference = await new SearchEngine(Models).RunAsync(Request(WorkerModes.Resident, steps: 50, forkAt: 5));
        // The call timeout also bounds joining (Describe): 3 s was missed by a healthy worker on a machine loaded to 15.
        await using var pool = Pool(new WorkerOptions { Mode = WorkerModes.Resident, UseLocal = false, MoveMargin = 1, CallTimeout = TimeSpan.FromSeconds(10), StepTimeout = TimeSpan.FromMilliseconds(100), MaxRetries = 0 });
        await pool.JoinAsync(First.Url);
        await pool.JoinAsync(Second.Url);
        await using var engine = new SearchEngine(Models, workers: pool);
        var probes = pool.Workers.ToDictionary(w => w.Name, w => w.Link!.Usage.Calls);

        var run = engine.Start(Request(WorkerModes.Resident, steps: 50, forkAt: 5));
        // Once the fork has happened, the children live only on the worker until the search fetches them.
        while (run.Progress().Nodes < 2 && !run.Completion.IsCompleted)
        {
            await Task.Delay(2);
        }

        var holder = pool.Workers.Single(w => w.Link!.Usage.Calls > probes[w.Name]).Name;
        var victim = holder == First.Url ? First : Second;

        victim.Signal("STOP");
        var result = await run.Completion.WaitAsync(TimeSpan.FromMinutes(2));
        victim.Signal("CONT");

        AssertSameCandidates(reference, result, 1e-4);
        Assert.True(result.Cost.ReplayNfe > 0, "the frozen worker's nodes were recomputed");
    }

    [Fact]
    public async Task JoinAsync_BehindAnInjectedLink_FitsAtLeastTheInjectedLatencyAndTransferTime()
    {
        // A delay can only lengthen a measured call, so the injected link is a lower bound on what the fit may
        // say; upper bounds belong to `bench links`, because on a shared machine scheduling stalls lengthen
        // calls by arbitrary amounts (a two-sided 20% bound failed under a load average of 14).
        var latency = TimeSpan.FromMilliseconds(200);
        const double BytesPerSecond = 4e6;
        const int Megabyte = 1048576;
        var options = new WorkerOptions { ProbeSizes = [0, 262144, 524288, Megabyte], ProbeRepeats = 3 };
        await using var throttled = new WorkerPool((endpoint, session) => new GrpcWorkerClient(endpoint, session, Secret, new LinkThrottle(latency, BytesPerSecond)), LocalHash, options);

        var fit = (await throttled.JoinAsync(First.Url)).Link!.Fit;

        var injected = latency + TimeSpan.FromSeconds(Megabyte / BytesPerSecond);
        Assert.True(fit.Latency >= 0.8 * latency, $"fitted latency {fit.Latency.TotalMilliseconds} ms, injected {latency.TotalMilliseconds} ms");
        Assert.True(fit.Predict(Megabyte) >= 0.8 * injected, $"predicted {fit.Predict(Megabyte).TotalMilliseconds} ms for 1 MiB, injected {injected.TotalMilliseconds} ms");
        Assert.True(fit.SecondsPerByte > 0, "moving more bytes takes longer");
    }

    private WorkerPool Pool(WorkerOptions options, Func<string, string?>? hash = null) =>
        new((endpoint, session) => new GrpcWorkerClient(endpoint, session, Secret), hash ?? LocalHash, options with { ProbeSizes = [0, 65536, 262144], ProbeRepeats = 2 });

    private static SearchRequest Request(string mode, int steps = 30, int? forkAt = null)
    {
        _ = mode;
        return new SearchRequest
        {
            Model = "counting",
            Condition = "7",
            Steps = steps,
            Eta = 0.5,
            Guidance = 2,
            Seed = 11,
            Strategy = StrategyCatalog.BuiltIn.Create("shared_prefix", new Dictionary<string, string> { ["k"] = "4", ["fork_at"] = (forkAt ?? (steps / 2)).ToString(System.Globalization.CultureInfo.InvariantCulture) }, steps),
            Verifiers = ["count-verifier"],
            Candidates = 4,
        };
    }

    private sealed class Tolerance(double epsilon) : IEqualityComparer<double>
    {
        public bool Equals(double x, double y) => Math.Abs(x - y) <= epsilon;

        public int GetHashCode(double obj) => 0;
    }
}
