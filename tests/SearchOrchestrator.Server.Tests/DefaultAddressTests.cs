using System.Net;
using System.Net.Sockets;
using SearchOrchestrator.Server;

namespace SearchOrchestrator.Server.Tests;

public sealed class DefaultAddressTests
{
    [Fact]
    public void Choose_DefaultPortTaken_MovesToALaterFreePortOnTheSameHost()
    {
        using var occupant = new TcpListener(IPAddress.Loopback, 0);
        occupant.Start();
        var taken = ((IPEndPoint)occupant.LocalEndpoint).Port;

        var chosen = new Uri(DefaultAddress.Choose($"http://127.0.0.1:{taken}"));

        Assert.Equal(("http", "127.0.0.1"), (chosen.Scheme, chosen.Host));
        Assert.InRange(chosen.Port, taken + 1, taken + DefaultAddress.Tries - 1);
    }

    [Fact]
    public void Choose_DefaultPortFree_KeepsTheDefault()
    {
        int free;
        using (var probe = new TcpListener(IPAddress.Loopback, 0))
        {
            probe.Start();
            free = ((IPEndPoint)probe.LocalEndpoint).Port;
        }

        Assert.Equal($"http://127.0.0.1:{free}", DefaultAddress.Choose($"http://127.0.0.1:{free}"));
    }
}
