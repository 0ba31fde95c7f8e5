using System.Net;
using System.Threading.Channels;
using Microsoft.Extensions.Time.Testing;
using SearchOrchestrator.Links;
using SearchOrchestrator.Server.Backends;
using SearchOrchestrator.Server.Discovery;
using SearchOrchestrator.Server.Workers;
using SearchOrchestrator.Tensors;
using SearchOrchestrator.Workers;

namespace SearchOrchestrator.Server.Tests.Discovery;

public sealed class DiscoveryPoolFeedTests
{
    private static readonly DnsDiscoveryOptions Options = new() { Name = "workers.searchorch.svc.cluster.local", Port = 50061, Scheme = "http", RefreshInterval = TimeSpan.FromSeconds(30) };

    [Fact]
    public async Task Refreshes_AddressesComeAndGo_WorkersJoinAndLeaveThePoolWithoutARestart()
    {
        var time = new FakeTimeProvider();
        var answers = new Queue<string[]>([["10.0.0.1", "10.0.0.2"], ["10.0.0.2", "10.0.0.3"], ["10.0.0.3"]]);
        using var discovery = new DnsDiscovery(Options, (_, _) => Task.FromResult(answers.Dequeue().Select(IPAddress.Parse).ToArray()), time);
        var connected = new List<string>();
        await using var pool = new WorkerPool((endpoint, _) => { connected.Add(endpoint); return new FakeWorkerClient(endpoint); }, _ => null, new WorkerOptions(), time);
        using var feed = new DiscoveryPoolFeed(discovery, new PoolMembership(pool, _ => null, time), Options);
        var refreshed = Channel.CreateUnbounded<DiscoveryChange>();
        discovery.Refreshed += c => refreshed.Writer.TryWrite(c); // after the feed's own handler

        await feed.StartAsync(CancellationToken.None);
        await discovery.StartAsync(CancellationToken.None);
        await refreshed.Reader.ReadAsync();
        await feed.Idle;
        var atStart = Names(pool);
        time.Advance(Options.RefreshInterval);
        await refreshed.Reader.ReadAsync();
        await feed.Idle;
        var afterOne = Names(pool);
        time.Advance(Options.RefreshInterval);
        await refreshed.Reader.ReadAsync();
        await feed.Idle;
        var afterTwo = Names(pool);
        await discovery.StopAsync(CancellationToken.None);
        await feed.StopAsync(CancellationToken.None);

        Assert.Equal(["http://10.0.0.1:50061", "http://10.0.0.2:50061"], atStart);
        Assert.Equal(["http://10.0.0.2:50061", "http://10.0.0.3:50061"], afterOne);
        Assert.Equal(["http://10.0.0.3:50061"], afterTwo);
        Assert.Equal(["http://10.0.0.3:50061"], feed.Joined);
        Assert.Equal(["http://10.0.0.1:50061", "http://10.0.0.2:50061", "http://10.0.0.3:50061"], connected.Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task Refresh_AddressNotReachableYet_JoinsAtALaterResolution()
    {
        var time = new FakeTimeProvider();
        using var discovery = new DnsDiscovery(Options, (_, _) => Task.FromResult(new[] { IPAddress.Parse("10.0.0.9") }), time);
        var reachable = false;
        await using var pool = new WorkerPool((endpoint, _) => new FakeWorkerClient(endpoint) { Down = !reachable }, _ => null, new WorkerOptions(), time);
        using var feed = new DiscoveryPoolFeed(discovery, new PoolMembership(pool, _ => null, time), Options);

        await discovery.RefreshAsync();
        await feed.Idle;
        var whileDown = Names(pool);
        reachable = true;
        await discovery.RefreshAsync(); // nothing changed in DNS; the feed tries the missing worker again
        await feed.Idle;

        Assert.Empty(whileDown);
        Assert.Equal(["http://10.0.0.9:50061"], Names(pool));
    }

    [Fact]
    public async Task Refresh_WorkerRefused_IsNotTriedAgainWhileItStays()
    {
        using var discovery = new DnsDiscovery(Options, (_, _) => Task.FromResult(new[] { IPAddress.Parse("10.0.0.4") }), new FakeTimeProvider());
        var connects = 0;
        await using var pool = new WorkerPool((endpoint, _) => { connects++; return new FakeWorkerClient(endpoint) { Hash = "bad" }; }, _ => "good", new WorkerOptions());
        using var feed = new DiscoveryPoolFeed(discovery, new PoolMembership(pool, _ => null), Options);

        await discovery.RefreshAsync();
        await feed.Idle;
        await discovery.RefreshAsync();
        await feed.Idle;

        Assert.Empty(pool.Workers);
        Assert.Equal(1, connects);
    }

    [Fact]
    public void Validate_KindKServeWithoutModels_NamesTheSettings()
    {
        var failures = DnsDiscoveryOptionsValidator.Check(Options, DnsDiscoveryOptions.SectionName);
        var bad = new DnsDiscoveryOptions { Name = Options.Name, Port = 1, Kind = "triton" };
        var kserve = new DnsDiscoveryOptions { Name = Options.Name, Port = 1, Kind = BackendKinds.KServe };

        var badFailures = DnsDiscoveryOptionsValidator.Check(bad, DnsDiscoveryOptions.SectionName);
        var kserveFailures = DnsDiscoveryOptionsValidator.Check(kserve, DnsDiscoveryOptions.SectionName);

        Assert.Empty(failures);
        Assert.Equal(["Discovery:Dns:Kind: must be worker or kserve, got 'triton'."], badFailures);
        Assert.Single(kserveFailures, f => f.StartsWith("Discovery:Dns:KServe:Models: empty", StringComparison.Ordinal));
    }

    private static List<string> Names(WorkerPool pool) => [.. pool.Workers.Select(w => w.Name)];

    /// <summary>A worker that hosts one denoiser and answers probes at once (or is unreachable).</summary>
    private sealed class FakeWorkerClient(string endpoint) : IWorkerClient
    {
        public bool Down { get; init; }

        public string Hash { get; init; } = "abc";

        public string Endpoint => endpoint;

        public Task<WorkerCall<WorkerDescription>> DescribeAsync(CancellationToken cancellationToken = default) => Down
            ? throw new WorkerUnavailableException(endpoint, "connection refused")
            : Task.FromResult(new WorkerCall<WorkerDescription>(
                new WorkerDescription { ProtocolVersion = WorkerPool.ProtocolVersion, Models = [new HostedModel("counting", "denoiser", Hash)], Device = "cpu", ExecutionProvider = "cpu", Threads = 1, MaxBatchSize = 8, MaxResidentBytes = 1 << 20 },
                default,
                TimeSpan.Zero));

        public Task<WorkerCall<IReadOnlyList<float[]>>> DecodeAsync(string model, IReadOnlyList<float[]> latents, CancellationToken cancellationToken = default) =>
            throw new NotSupportedException();

        public Task<WorkerCall<IReadOnlyList<float[]>>> DecodeResidentAsync(string model, IReadOnlyList<ulong> handles, CancellationToken cancellationToken = default) =>
            throw new NotSupportedException();

        public Task<WorkerCall<bool>> ProbeAsync(int sendBytes, int receiveBytes, CancellationToken cancellationToken = default) =>
            Task.FromResult(new WorkerCall<bool>(true, new Transfer(sendBytes, receiveBytes, TimeSpan.FromMilliseconds(1 + ((sendBytes + receiveBytes) / 1e6))), TimeSpan.Zero));

        public Task<bool> IsHealthyAsync(CancellationToken cancellationToken = default) => Task.FromResult(!Down);

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;

        public Task<WorkerCall<PromptEncoding>> StepAsync(TrajectorySettings settings, IReadOnlyList<RemoteStep> items, CancellationToken cancellationToken = default) => throw new NotSupportedException();

        public Task<WorkerCall<bool>> PutAsync(TrajectorySettings settings, IReadOnlyList<ResidentState> nodes, CancellationToken cancellationToken = default) => throw new NotSupportedException();

        public Task<WorkerCall<RemotePasses>> AdvanceAsync(IReadOnlyList<ulong> handles, int toStep, CancellationToken cancellationToken = default) => throw new NotSupportedException();

        public Task<WorkerCall<bool>> ForkAsync(ulong parent, IReadOnlyList<ResidentChild> children, CancellationToken cancellationToken = default) => throw new NotSupportedException();

        public Task<WorkerCall<IReadOnlyList<ResidentState>>> FetchAsync(IReadOnlyList<ulong> handles, CancellationToken cancellationToken = default) => throw new NotSupportedException();

        public Task<WorkerCall<bool>> ReleaseAsync(IReadOnlyList<ulong> handles, CancellationToken cancellationToken = default) => throw new NotSupportedException();

        public Task<WorkerCall<float[]>> VerifyAsync(string verifier, string condition, SampleShape shape, IReadOnlyList<float[]> samples, IReadOnlyList<string>? texts = null, IReadOnlyList<float>? times = null, CancellationToken cancellationToken = default) => throw new NotSupportedException();

        public Task<WorkerCall<float[]>> VerifyResidentAsync(string verifier, string condition, IReadOnlyList<ulong> handles, CancellationToken cancellationToken = default) => throw new NotSupportedException();
    }
}
