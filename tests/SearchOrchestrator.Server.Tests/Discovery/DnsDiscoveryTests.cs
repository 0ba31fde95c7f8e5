using System.Net;
using System.Net.Sockets;
using System.Threading.Channels;
using Microsoft.Extensions.Time.Testing;
using SearchOrchestrator.Server.Discovery;

namespace SearchOrchestrator.Server.Tests.Discovery;

public sealed class DnsDiscoveryTests
{
    private static readonly DnsDiscoveryOptions Options = new() { Name = "workers.searchorch.svc.cluster.local", Port = 50052, Scheme = "http", RefreshInterval = TimeSpan.FromSeconds(30) };

    private static IPAddress[] Addresses(params string[] addresses) => [.. addresses.Select(IPAddress.Parse)];

    /// <summary>A resolver that answers from a script, one answer per call, and records the names asked.</summary>
    private sealed class ScriptedResolver(params Func<IPAddress[]>[] answers)
    {
        private int _calls;

        public List<string> Names { get; } = [];

        public Task<IPAddress[]> Resolve(string name, CancellationToken cancellationToken)
        {
            Names.Add(name);
            var answer = answers[Math.Min(_calls++, answers.Length - 1)];
            return Task.FromResult(answer());
        }
    }

    [Fact]
    public async Task RefreshAsync_AddressesChange_ReportsJoinsAndLeaves()
    {
        var resolver = new ScriptedResolver(() => Addresses("10.0.0.1", "10.0.0.2"), () => Addresses("10.0.0.2", "10.0.0.3"));
        var discovery = new DnsDiscovery(Options, resolver.Resolve, new FakeTimeProvider());
        var joined = new List<string>();
        var left = new List<string>();
        discovery.Joined += e => joined.Add(e.ToString());
        discovery.Left += e => left.Add(e.ToString());

        var first = await discovery.RefreshAsync();
        var second = await discovery.RefreshAsync();

        Assert.Equal(["http://10.0.0.1:50052", "http://10.0.0.2:50052"], first.Joined.Select(e => e.ToString()));
        Assert.Empty(first.Left);
        Assert.Equal(["http://10.0.0.3:50052"], second.Joined.Select(e => e.ToString()));
        Assert.Equal(["http://10.0.0.1:50052"], second.Left.Select(e => e.ToString()));
        Assert.Equal(["http://10.0.0.1:50052", "http://10.0.0.2:50052", "http://10.0.0.3:50052"], joined);
        Assert.Equal(["http://10.0.0.1:50052"], left);
        Assert.Equal(["http://10.0.0.2:50052", "http://10.0.0.3:50052"], discovery.Endpoints.Select(e => e.ToString()));
        Assert.Equal([Options.Name, Options.Name], resolver.Names);
    }

    [Fact]
    public async Task RefreshAsync_ResolutionFails_KeepsTheKnownEndpoints()
    {
        var resolver = new ScriptedResolver(() => Addresses("10.0.0.1", "fd00::7"), () => throw new SocketException((int)SocketError.HostNotFound));
        var discovery = new DnsDiscovery(Options, resolver.Resolve, new FakeTimeProvider());
        await discovery.RefreshAsync();

        var change = await discovery.RefreshAsync();

        Assert.Empty(change.Joined);
        Assert.Empty(change.Left);
        Assert.Equal(["http://10.0.0.1:50052", "http://[fd00::7]:50052"], discovery.Endpoints.Select(e => e.ToString()));
    }

    [Fact]
    public async Task StartAsync_ThenTimeAdvancesByTheInterval_ResolvesAtStartAndAgainEachInterval()
    {
        var time = new FakeTimeProvider();
        var resolver = new ScriptedResolver(() => Addresses("10.0.0.1"), () => Addresses("10.0.0.1", "10.0.0.2"), () => Addresses("10.0.0.2"));
        using var discovery = new DnsDiscovery(Options, resolver.Resolve, time);
        var changes = Channel.CreateUnbounded<DiscoveryChange>();
        discovery.Refreshed += c => changes.Writer.TryWrite(c);

        await discovery.StartAsync(CancellationToken.None);
        Assert.True(changes.Reader.TryRead(out var atStart)); // resolved before StartAsync returned
        time.Advance(TimeSpan.FromSeconds(29));
        Assert.False(changes.Reader.TryRead(out _)); // not yet due
        time.Advance(TimeSpan.FromSeconds(1));
        var afterOne = await changes.Reader.ReadAsync();
        time.Advance(TimeSpan.FromSeconds(30));
        var afterTwo = await changes.Reader.ReadAsync();
        await discovery.StopAsync(CancellationToken.None);

        Assert.Equal(["http://10.0.0.1:50052"], atStart.Joined.Select(e => e.ToString()));
        Assert.Equal(["http://10.0.0.2:50052"], afterOne.Joined.Select(e => e.ToString()));
        Assert.Empty(afterOne.Left);
        Assert.Empty(afterTwo.Joined);
        Assert.Equal(["http://10.0.0.1:50052"], afterTwo.Left.Select(e => e.ToString()));
        Assert.Equal(3, resolver.Names.Count);
    }

    [Fact]
    public void Constructor_BadOptions_NamesEverySetting()
    {
        var bad = new DnsDiscoveryOptions { Name = "", Port = 0, Scheme = "grpc", RefreshInterval = TimeSpan.FromMilliseconds(10) };

        var error = Assert.Throws<ArgumentException>(() => new DnsDiscovery(bad));

        Assert.Contains("Discovery:Dns:Name: '' is not a host name", error.Message, StringComparison.Ordinal);
        Assert.Contains("Discovery:Dns:Port: must be 1 to 65535, got 0.", error.Message, StringComparison.Ordinal);
        Assert.Contains("Discovery:Dns:Scheme: must be http or https, got 'grpc'.", error.Message, StringComparison.Ordinal);
        Assert.Contains("Discovery:Dns:RefreshInterval: must be at least 00:00:01", error.Message, StringComparison.Ordinal);
    }
}
