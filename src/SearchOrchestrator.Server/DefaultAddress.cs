using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace SearchOrchestrator.Server;

/// <summary>
/// The address a service binds when none is configured: its default port, or, when another process on this host
/// (another instance) already listens there, the next free one of the following <see cref="Tries"/> — so a second
/// <c>make run</c> starts and says where. A configured address is never moved: binding it fails with one line.
/// </summary>
internal static class DefaultAddress
{
    /// <summary>Ports tried from the default on.</summary>
    public const int Tries = 20;

    /// <summary>
    /// <paramref name="defaultUrl"/>, or the same address on the first free port after it (telling standard error
    /// why); the default itself when none is free, whose bind then fails as usual.
    /// </summary>
    public static string Choose(string defaultUrl)
    {
        var uri = new Uri(defaultUrl);
        for (var port = uri.Port; port < uri.Port + Tries; port++)
        {
            if (IsFree(port))
            {
                if (port == uri.Port)
                {
                    return defaultUrl;
                }

                var moved = string.Create(CultureInfo.InvariantCulture, $"{uri.Scheme}://{uri.Host}:{port}");
                Console.Error.WriteLine($"searchorch: {uri.Authority} is in use (another instance?); using {new Uri(moved).Authority}. Set --urls to choose.");
                return moved;
            }
        }

        return defaultUrl;
    }

    private static bool IsFree(int port)
    {
        try
        {
            using var listener = new TcpListener(IPAddress.Loopback, port);
            listener.Start();
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }
}
