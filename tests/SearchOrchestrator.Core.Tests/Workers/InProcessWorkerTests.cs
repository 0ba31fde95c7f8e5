using SearchOrchestrator.Core.Tests.TestDoubles;
using SearchOrchestrator.Links;
using SearchOrchestrator.Scheduling;
using SearchOrchestrator.Search;
using SearchOrchestrator.Strategies;
using SearchOrchestrator.Tensors;
using SearchOrchestrator.Verifiers;
using SearchOrchestrator.Workers;

namespace SearchOrchestrator.Core.Tests.Workers;

/// <summary>
/// The worker protocol's semantics without a network: an in-process worker (a <see cref="WorkerRuntime"/> behind an
/// <see cref="IWorkerClient"/> that can be made to fail) under the real tree, placement and replay.
/// </summary>
public sealed class InProcessWorkerTests
{
    private static readonly GaussianData Data = new(0.3, 0.7);

    private static SearchRequest Request(ISearchStrategy strategy, int steps = 20) => new()
    {
        Model = "gaussian-data",
        Condition = "1",
        Steps = steps,
        Eta = 0.5,
        Seed = 5,
        Strategy = strategy,
        Candidates = 4,
    };

    [Theory]
    [InlineData(WorkerModes.Stateless)]
    [InlineData(WorkerModes.Resident)]
    public async Task RunAsync_OnAWorkerOnly_IsBitIdenticalToLocal(string mode)
    {
        var models = Models();
        var reference = await new SearchEngine(models).RunAsync(Request(new SharedPrefixStrategy(4, 10)));
        await using var pool = await PoolAsync(models, new WorkerOptions { Mode = mode, UseLocal = false });
        await using var engine = new SearchEngine(models, workers: pool);

        var result = await engine.RunAsync(Request(new SharedPrefixStrategy(4, 10)));

        AssertSame(reference, result);
        Assert.Equal(reference.Cost.Nfe, result.Cost.Nfe);
        Assert.True(Assert.Single(result.Cost.Links).Bytes > 0);
    }

    [Fact]
    public async Task RunAsync_ResidentOnAWorkerOnly_CountsTheWorkersPassesInTheCostAccount()
    {
        var models = Models();
        await using var pool = await PoolAsync(models, new WorkerOptions { Mode = WorkerModes.Resident, UseLocal = false });
        await using var engine = new SearchEngine(models, workers: pool);

        var result = await engine.RunAsync(Request(new BestOfNStrategy(2), steps: 10));

        // Every row of every step ran in one of the worker's passes, each counted once (whether the two roots shared
        // a pass depends on the worker's timing): 20 rows in 10 to 20 passes.
        Assert.Equal(20, Math.Round(result.Cost.Batches * result.Cost.MeanBatchSize, 9));
        Assert.InRange(result.Cost.Batches, 10, 20);
        Assert.True(result.Cost.ComputeTime > TimeSpan.Zero);
        Assert.Equal(20, result.Cost.Nfe);
    }

    [Fact]
    public async Task RunAsync_ResidentAdvanceOfManySlowSteps_GoesInSlicesSoProgressMovesWhileItRuns()
    {
        var models = Models();
        await using var pool = await PoolAsync(models, new WorkerOptions { Mode = WorkerModes.Resident, UseLocal = false });
        var client = (InProcessWorkerClient)pool.Workers[0].Client;
        // A worker whose steps take 25 ms: an advance of 20 steps goes as 5 calls of about 100 ms each.
        client.PassTime = TimeSpan.FromMilliseconds(25);
        pool.Workers[0].Compute.Record(1, client.PassTime);
        pool.Workers[0].Compute.Record(64, client.PassTime);
        await using var engine = new SearchEngine(models, workers: pool);

        var run = engine.Start(Request(new BestOfNStrategy(1)), recordEvents: true);
        var result = await run.Completion;
        var advanced = run.TakeEvents(1000).Events.Where(e => e.Kind == TreeEventKind.Advanced).Select(e => e.Step);

        Assert.Equal([4, 8, 12, 16, 20], client.AdvanceTargets);
        Assert.Equal([4, 8, 12, 16, 20], advanced);
        Assert.Equal(20, result.Cost.Nfe);
        AssertSame(await new SearchEngine(models).RunAsync(Request(new BestOfNStrategy(1))), result);
    }

    [Theory]
    [InlineData(3)]
    [InlineData(6)]
    [InlineData(9)]
    public async Task RunAsync_WorkerDiesAfterSomeCalls_ReplaysItsNodesWithTheSameResult(int callsBeforeDeath)
    {
        var models = Models();
        var strategy = new BfsStrategy(4, [5, 10, 15], BfsMode.Resample);
        var reference = await new SearchEngine(models).RunAsync(Request(strategy) with { Verifiers = ["mean"] });
        await using var pool = await PoolAsync(models, new WorkerOptions { Mode = WorkerModes.Resident, UseLocal = true, MaxRetries = 0 });
        var client = (InProcessWorkerClient)pool.Workers[0].Client;
        client.FailAfter = callsBeforeDeath;
        await using var engine = new SearchEngine(models, workers: pool);

        var result = await engine.RunAsync(Request(strategy) with { Verifiers = ["mean"] });

        AssertSame(reference, result);
        Assert.Equal(reference.Cost.Nfe, result.Cost.Nfe);
    }

    [Fact]
    public async Task CreateTree_PoolWithoutABackendForTheModel_RunsLocallyAndWithOnePlaces()
    {
        var models = Models();
        await using var empty = new WorkerPool((e, s) => new InProcessWorkerClient(e, new WorkerRuntime(models, new SearchEngine(models), 1 << 24)), _ => null, new WorkerOptions());
        await using var joined = await PoolAsync(models, new WorkerOptions());
        await using var idle = new SearchEngine(models, workers: empty);
        await using var placed = new SearchEngine(models, workers: joined);

        var local = idle.CreateTree(Request(new BestOfNStrategy(2)));
        var remote = placed.CreateTree(Request(new BestOfNStrategy(2)));

        Assert.IsType<LocalExecutor>(local.Executor);
        Assert.IsType<PlacedExecutor>(remote.Executor);
    }

    [Fact]
    public async Task RunAsync_WorkerDies_LogsEachReplayWithTheNfeTheAccountReports()
    {
        var models = Models();
        var reference = await new SearchEngine(models).RunAsync(Request(new BfsStrategy(4, [5, 10, 15], BfsMode.Resample)) with { Verifiers = ["mean"] });
        await using var pool = await PoolAsync(models, new WorkerOptions { Mode = WorkerModes.Resident, UseLocal = true, MaxRetries = 0 });
        ((InProcessWorkerClient)pool.Workers[0].Client).FailAfter = 6;
        // Make the worker look free, so placement keeps the nodes there until it dies.
        pool.Workers[0].Compute.Record(1, TimeSpan.Zero);
        pool.Workers[0].Compute.Record(64, TimeSpan.Zero);
        var logger = new RecordingLogger<SearchEngine>();
        await using var engine = new SearchEngine(models, workers: pool, logger: logger);

        var result = await engine.RunAsync(Request(new BfsStrategy(4, [5, 10, 15], BfsMode.Resample)) with { Verifiers = ["mean"] });

        var replays = logger.Entries.Where(e => e.Id == 5103).ToList();
        Assert.NotEmpty(replays);
        Assert.True(result.Cost.ReplayNfe > 0);
        Assert.Equal(result.Cost.ReplayNfe, replays.Sum(e => long.Parse(e.Message.Split(": ")[1].Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture)));
        Assert.Contains(logger.Entries, e => e.Id == 5102 && e.Level == Microsoft.Extensions.Logging.LogLevel.Warning && e.Message.Contains("http://in-process:1", StringComparison.Ordinal));
        AssertSame(reference, result);
        Assert.Equal(reference.Cost.Nfe, result.Cost.Nfe);
    }

    [Fact]
    public async Task VerifyAsync_TwoVerifiersOverResidentNodes_FetchesEachNodeOnce()
    {
        var models = new FakeModels([new GaussianDataDenoiser(Data)], [new MeanVerifier(), new MeanVerifier("near", target: 0)]);
        await using var pool = await PoolAsync(models, new WorkerOptions { Mode = WorkerModes.Resident, UseLocal = false });
        var client = (InProcessWorkerClient)pool.Workers[0].Client;
        await using var engine = new SearchEngine(models, workers: pool);
        var tree = engine.CreateTree(Request(new BestOfNStrategy(4), steps: 10) with { Verifiers = ["mean", "near"] });
        var roots = Enumerable.Range(0, 4).Select(_ => tree.CreateRoot()).ToList();
        await tree.AdvanceAsync(roots, 5);

        // Halfway, the four nodes live on the worker, which hosts neither verifier: both score here, at once.
        var scored = await tree.VerifyAsync(roots);

        Assert.Equal(4, scored.Count);
        Assert.Equal(1, client.Fetches);
        Assert.Equal(roots.Count, client.FetchedHandles.Count);
        Assert.Equal(roots.Count, client.FetchedHandles.Distinct().Count());
        // Put (the roots are drawn there from their keys: nothing moves), one Advance and one Fetch of 16 bytes each way.
        var link = Assert.Single(tree.Account().Links);
        Assert.Equal(3, link.Calls);
        Assert.Equal(2 * 32, link.Bytes);
        Assert.Equal(8, tree.VerifierCalls);
    }

    [Fact]
    public async Task RunAsync_WorkerReturnsBadData_RerunsElsewhereAndTakesItOutOfRotation()
    {
        var models = Models();
        var reference = await new SearchEngine(models).RunAsync(Request(new BestOfNStrategy(4)));
        await using var pool = await PoolAsync(models, new WorkerOptions { Mode = WorkerModes.Stateless, UseLocal = true, MaxRetries = 0, MaxConsecutiveFailures = 1 });
        var client = (InProcessWorkerClient)pool.Workers[0].Client;
        client.CorruptSteps = true;
        // Make the worker look free and local look busy, so placement sends work to the worker first.
        pool.Workers[0].Compute.Record(1, TimeSpan.Zero);
        pool.Workers[0].Compute.Record(64, TimeSpan.Zero);
        await using var engine = new SearchEngine(models, workers: pool);

        var result = await engine.RunAsync(Request(new BestOfNStrategy(4)));

        AssertSame(reference, result);
        Assert.True(client.Steps > 0, "the worker was tried");
        Assert.False(pool.Workers[0].IsAvailable);
    }

    [Fact]
    public async Task CheckHealthAsync_WorkerOutOfRotationRecovers_ComesBackIntoRotation()
    {
        var models = Models();
        await using var pool = await PoolAsync(models, new WorkerOptions { Mode = WorkerModes.Stateless, UseLocal = true, MaxRetries = 0, MaxConsecutiveFailures = 1 });
        var worker = pool.Workers[0];
        var client = (InProcessWorkerClient)worker.Client;
        client.CorruptSteps = true;
        var process = models.GetDenoiser("gaussian-data").Description.Process;
        var settings = new TrajectorySettings("gaussian-data", 10, SearchOrchestrator.Processes.SamplerSettings.Ddim(0), null, 1, 2);
        var step = new StepLoop(process.Steps(10), process.CreateSampler(settings.Sampler), 2, 1).Request(default, 0, new float[8], new float[8]);
        await Assert.ThrowsAsync<WorkerDataException>(() => worker.StepAsync(step, settings));
        Assert.False(worker.IsAvailable);

        var stillSick = await worker.CheckHealthAsync();
        client.CorruptSteps = false;
        var healthy = await worker.CheckHealthAsync();

        Assert.False(stillSick);
        Assert.True(healthy);
        Assert.True(worker.IsAvailable);
        Assert.Equal(0, worker.ConsecutiveFailures);
        Assert.Contains("not finite", worker.LastFailure, StringComparison.Ordinal);
    }

    [Fact]
    public void Put_PastTheResidentMemoryBound_SaysHowToRaiseIt()
    {
        var models = Models();
        var runtime = new WorkerRuntime(models, new SearchEngine(models), maxResidentBytes: 100);
        var settings = new TrajectorySettings("gaussian-data", 10, SearchOrchestrator.Processes.SamplerSettings.Ddim(0.5), null, 1, 2);

        runtime.Put("s", settings, [new ResidentState(1, default, 0, null, null, FromPrior: true)]);
        var full = Assert.Throws<ResidentMemoryExhaustedException>(() => runtime.Put("s", settings, [new ResidentState(2, default, 0, null, null, FromPrior: true)]));

        Assert.Contains("Worker:MaxResidentBytes", full.Message, StringComparison.Ordinal);
        Assert.Equal(1, runtime.ResidentNodes);
        runtime.Release("s", [1]);
        Assert.Equal(0, runtime.ResidentBytes);
    }

    [Fact]
    public void Put_PastTheSessionBound_RefusesThatSessionOnly()
    {
        var models = Models();
        var settings = new TrajectorySettings("gaussian-data", 10, SearchOrchestrator.Processes.SamplerSettings.Ddim(0.5), null, 1, 2);
        var probe = new WorkerRuntime(models, new SearchEngine(models), maxResidentBytes: 1 << 20);
        probe.Put("s", settings, [new ResidentState(1, default, 0, null, null, FromPrior: true)]);
        var runtime = new WorkerRuntime(models, new SearchEngine(models), maxResidentBytes: 1 << 20, maxResidentBytesPerSession: probe.ResidentBytes);

        runtime.Put("a", settings, [new ResidentState(1, default, 0, null, null, FromPrior: true)]);
        var full = Assert.Throws<ResidentMemoryExhaustedException>(() => runtime.Put("a", settings, [new ResidentState(2, default, 0, null, null, FromPrior: true)]));
        runtime.Put("b", settings, [new ResidentState(1, default, 0, null, null, FromPrior: true)]);

        Assert.Contains("Worker:MaxResidentBytesPerSession", full.Message, StringComparison.Ordinal);
        Assert.Equal(2, runtime.ResidentNodes);
        Assert.Equal(2 * probe.ResidentBytes, runtime.ResidentBytes);
    }

    [Fact]
    public void ExpireIdle_SessionUnusedForTheTimeout_LosesItsNodesOthersKeepTheirs()
    {
        var models = Models();
        var time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider();
        var runtime = new WorkerRuntime(models, new SearchEngine(models), maxResidentBytes: 1 << 20, time: time);
        var settings = new TrajectorySettings("gaussian-data", 10, SearchOrchestrator.Processes.SamplerSettings.Ddim(0.5), null, 1, 2);
        runtime.Put("dead", settings, [new ResidentState(1, default, 0, null, null, FromPrior: true), new ResidentState(2, default, 0, null, null, FromPrior: true)]);
        runtime.Put("alive", settings, [new ResidentState(1, default, 0, null, null, FromPrior: true)]);

        time.Advance(TimeSpan.FromMinutes(9));
        runtime.Fetch("alive", [1]);
        var early = runtime.ExpireIdle(TimeSpan.FromMinutes(10));
        time.Advance(TimeSpan.FromMinutes(1));
        var expired = runtime.ExpireIdle(TimeSpan.FromMinutes(10));

        Assert.Equal(0, early);
        Assert.Equal(2, expired);
        Assert.Equal(1, runtime.ResidentNodes);
        Assert.Equal(1, runtime.Sessions);
        Assert.Throws<ResidentNodeNotFoundException>(() => runtime.Fetch("dead", [1]));
    }

    [Fact]
    public async Task RunAsync_VerifierOnlyAWorkerServes_IsScoredThereAsARemoteVerifier()
    {
        var worker = Models();
        var request = Request(new BestOfNStrategy(3), steps: 10) with { Verifiers = ["mean"] };
        var reference = await new SearchEngine(worker).RunAsync(request);
        var scoredBefore = ((MeanVerifier)worker.GetVerifier("mean")).Calls;
        await using var pool = await PoolAsync(worker, new WorkerOptions { Mode = WorkerModes.Stateless, UseLocal = true }, verifiers: ["mean"]);
        var here = new ModelCatalog(new FakeModels([new GaussianDataDenoiser(Data)], []), [], pool.RemoteVerifier);
        await using var engine = new SearchEngine(here, workers: pool);

        var result = await engine.RunAsync(request);

        Assert.IsType<RemoteVerifier>(here.GetVerifier("mean"));
        Assert.Equal(3, ((MeanVerifier)worker.GetVerifier("mean")).Calls - scoredBefore); // the worker scored the three finished candidates
        Assert.Equal(reference.Candidates.Select(c => (c.Path, c.Score)), result.Candidates.Select(c => (c.Path, c.Score)));
        Assert.Throws<ModelNotFoundException>(() => here.GetVerifier("no-such-verifier"));
    }

    [Theory]
    [InlineData(WorkerModes.Stateless)]
    [InlineData(WorkerModes.Resident)]
    public async Task VerifyAsync_NoiseAwareVerifierOnlyAWorkerServes_GetsEachNodesPredictionTime(string mode)
    {
        var worker = new FakeModels([new GaussianDataDenoiser(Data)], [new TimeVerifier()]);
        await using var pool = await PoolAsync(worker, new WorkerOptions { Mode = mode, UseLocal = false }, verifiers: [TimeVerifier.VerifierName]);
        var here = new ModelCatalog(new FakeModels([new GaussianDataDenoiser(Data)], []), [], pool.RemoteVerifier);
        await using var engine = new SearchEngine(here, workers: pool);
        var tree = engine.CreateTree(Request(new BestOfNStrategy(2), steps: 10) with { Verifiers = [TimeVerifier.VerifierName] });
        var roots = new[] { tree.CreateRoot(), tree.CreateRoot() };
        await tree.AdvanceAsync(roots, 4);

        await tree.VerifyAsync(roots);

        // Stateless: the samples go to the worker with their times (VerifyRequest.times); resident: the worker takes
        // each node's from its step. Either way the time of step 3, which predicted the step-4 x0-predictions.
        var time = (float)new GaussianDataDenoiser(Data).Description.Process.Steps(10).TimestepAt(3);
        Assert.All(roots, r => Assert.Equal(time, r.Score));
    }

    [Fact]
    public async Task JoinAsync_OtherProtocolVersion_IsRefused()
    {
        var models = Models();
        await using var pool = new WorkerPool((e, s) => new InProcessWorkerClient(e, new WorkerRuntime(models, new SearchEngine(models), 1 << 20)) { ProtocolVersion = 99 }, _ => null, new WorkerOptions());

        var refused = await Assert.ThrowsAsync<WorkerRefusedException>(() => pool.JoinAsync("http://w:1"));

        Assert.Contains("protocol version 99", refused.Message, StringComparison.Ordinal);
    }

    /// <summary>A noise-aware stand-in: scores each sample by the model time it came with (−1 without one).</summary>
    private sealed class TimeVerifier : IVerifier
    {
        public const string VerifierName = "time";

        public string Name => VerifierName;

        public Task<float[]> ScoreAsync(VerifierBatch batch, CancellationToken cancellationToken = default) =>
            Task.FromResult(Enumerable.Range(0, batch.Count).Select(i => batch.Times.Length == 0 ? -1f : batch.Times.Span[i]).ToArray());
    }

    private static FakeModels Models() => new([new GaussianDataDenoiser(Data)], [new MeanVerifier()]);

    /// <summary>A pool with one in-process worker, which says it serves <paramref name="verifiers"/> (none by default).</summary>
    private static async Task<WorkerPool> PoolAsync(FakeModels models, WorkerOptions options, string[]? verifiers = null)
    {
        var pool = new WorkerPool((e, s) => new InProcessWorkerClient(e, new WorkerRuntime(models, new SearchEngine(models), 1 << 24)) { Verifiers = verifiers ?? [] }, _ => null, options with { ProbeSizes = [0, 1024], ProbeRepeats = 1 });
        await pool.JoinAsync("http://in-process:1");
        return pool;
    }

    private static void AssertSame(SearchResult expected, SearchResult actual)
    {
        Assert.Equal(expected.Candidates.Select(c => c.Path), actual.Candidates.Select(c => c.Path));
        for (var i = 0; i < expected.Candidates.Count; i++)
        {
            Assert.Equal(expected.Candidates[i].Sample, actual.Candidates[i].Sample);
        }
    }

    /// <summary>A worker in this process; <see cref="FailAfter"/> calls later it dies, and <see cref="CorruptSteps"/> makes Step answer NaN.</summary>
    private sealed class InProcessWorkerClient(string endpoint, WorkerRuntime runtime) : IWorkerClient
    {
        private const string Session = "in-process";
        private int _calls;

        /// <summary>The verifiers Describe says this worker serves.</summary>
        public IReadOnlyList<string> Verifiers { get; init; } = [];

        public string Endpoint { get; } = endpoint;

        public int ProtocolVersion { get; init; } = WorkerPool.ProtocolVersion;

        public int FailAfter { get; set; } = int.MaxValue;

        public bool CorruptSteps { get; set; }

        public int Steps { get; private set; }

        /// <summary>The worker time Advance reports per pass it ran (zero: instant).</summary>
        public TimeSpan PassTime { get; set; }

        /// <summary>Fetch calls made.</summary>
        public int Fetches { get; private set; }

        /// <summary>Every handle fetched, once per time it was fetched.</summary>
        public List<ulong> FetchedHandles { get; } = [];

        /// <summary>The target step of every Advance call, in order.</summary>
        public List<int> AdvanceTargets { get; } = [];

        public Task<WorkerCall<WorkerDescription>> DescribeAsync(CancellationToken cancellationToken = default) => Call(() => Task.FromResult(new WorkerDescription
        {
            ProtocolVersion = ProtocolVersion,
            Models = [new HostedModel("gaussian-data", "denoiser", string.Empty), .. Verifiers.Select(v => new HostedModel(v, "verifier", string.Empty))],
            Device = "cpu",
            ExecutionProvider = "cpu",
            Threads = 1,
            MaxBatchSize = 64,
            MaxResidentBytes = runtime.MaxResidentBytes,
        }), counted: false);

        public Task<WorkerCall<PromptEncoding>> StepAsync(TrajectorySettings settings, IReadOnlyList<RemoteStep> items, CancellationToken cancellationToken = default) => Call(async () =>
        {
            Steps++;
            if (CorruptSteps)
            {
                throw new WorkerDataException(Endpoint, "Step result 0 is not finite float32 values.");
            }

            return await runtime.StepAsync(settings, items, cancellationToken);
        }, bytes: items.Sum(i => i.State.Length * 12L));

        public Task<WorkerCall<bool>> PutAsync(TrajectorySettings settings, IReadOnlyList<ResidentState> nodes, CancellationToken cancellationToken = default) =>
            Call(() => { runtime.Put(Session, settings, nodes); return Task.FromResult(true); }, bytes: nodes.Sum(n => (n.State?.Length ?? 0) * 4L));

        public async Task<WorkerCall<RemotePasses>> AdvanceAsync(IReadOnlyList<ulong> handles, int toStep, CancellationToken cancellationToken = default)
        {
            AdvanceTargets.Add(toStep);
            var call = await Call(() => runtime.AdvanceAsync(Session, handles, toStep, cancellationToken));
            return call with { ServerTime = PassTime * call.Value.Passes.Count };
        }

        public Task<WorkerCall<bool>> ForkAsync(ulong parent, IReadOnlyList<ResidentChild> children, CancellationToken cancellationToken = default) =>
            Call(() => { runtime.Fork(Session, parent, children); return Task.FromResult(true); });

        public Task<WorkerCall<IReadOnlyList<ResidentState>>> FetchAsync(IReadOnlyList<ulong> handles, CancellationToken cancellationToken = default) =>
            Call(async () =>
            {
                lock (FetchedHandles)
                {
                    Fetches++;
                    FetchedHandles.AddRange(handles);
                }

                await Task.Yield(); // as over a network: the caller goes on while the states travel
                return runtime.Fetch(Session, handles);
            });

        public Task<WorkerCall<bool>> ReleaseAsync(IReadOnlyList<ulong> handles, CancellationToken cancellationToken = default) =>
            Call(() => { runtime.Release(Session, handles); return Task.FromResult(true); });

        public Task<WorkerCall<float[]>> VerifyAsync(string verifier, string condition, SampleShape shape, IReadOnlyList<float[]> samples, IReadOnlyList<string>? texts = null, IReadOnlyList<float>? times = null, CancellationToken cancellationToken = default) =>
            Call(() => runtime.VerifyAsync(verifier, condition, shape, samples, texts, times, cancellationToken));

        public Task<WorkerCall<float[]>> VerifyResidentAsync(string verifier, string condition, IReadOnlyList<ulong> handles, CancellationToken cancellationToken = default) =>
            Call(() => runtime.VerifyResidentAsync(verifier, condition, Session, handles, cancellationToken));

        public Task<WorkerCall<IReadOnlyList<float[]>>> DecodeAsync(string model, IReadOnlyList<float[]> latents, CancellationToken cancellationToken = default) =>
            Call(() => runtime.DecodeAsync(model, latents, cancellationToken));

        public Task<WorkerCall<IReadOnlyList<float[]>>> DecodeResidentAsync(string model, IReadOnlyList<ulong> handles, CancellationToken cancellationToken = default) =>
            Call(() => runtime.DecodeResidentAsync(model, Session, handles, cancellationToken));

        public Task<WorkerCall<bool>> ProbeAsync(int sendBytes, int receiveBytes, CancellationToken cancellationToken = default) =>
            Call(() => Task.FromResult(true), bytes: sendBytes + receiveBytes, counted: false);

        public Task<bool> IsHealthyAsync(CancellationToken cancellationToken = default) => Task.FromResult(_calls < FailAfter && !CorruptSteps);

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;

        private async Task<WorkerCall<T>> Call<T>(Func<Task<T>> body, long bytes = 16, bool counted = true)
        {
            if (counted && Interlocked.Increment(ref _calls) > FailAfter)
            {
                throw new WorkerUnavailableException(Endpoint, "Unavailable: the worker process is gone.");
            }

            var value = await body();
            return new WorkerCall<T>(value, new Transfer(bytes, bytes, TimeSpan.FromMicroseconds(bytes)), TimeSpan.Zero);
        }
    }
}
