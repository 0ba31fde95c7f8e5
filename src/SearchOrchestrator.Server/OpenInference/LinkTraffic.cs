namespace SearchOrchestrator.Server.OpenInference;

/// <summary>One remote call's traffic: bytes each way and the time from sending to the whole reply.</summary>
/// <param name="BytesSent">Request bytes: the protobuf message plus gRPC's 5-byte message prefix (HTTP/2 headers not counted).</param>
/// <param name="BytesReceived">Response bytes, counted the same way.</param>
/// <param name="Elapsed">Wall time of the call, from before sending to the decoded reply.</param>
public readonly record struct LinkTrafficSample(long BytesSent, long BytesReceived, TimeSpan Elapsed);

/// <summary>
/// The traffic on one link (one remote endpoint): running totals of calls, bytes each way and time in calls, and an
/// event per call so link measurement (the α + β·bytes fit) can consume every sample. Safe to call concurrently.
/// </summary>
public sealed class LinkTraffic
{
    private long _calls;
    private long _bytesSent;
    private long _bytesReceived;
    private long _elapsedTicks;

    /// <summary>Creates the account for the link called <paramref name="link"/> (an endpoint address).</summary>
    public LinkTraffic(string link)
    {
        ArgumentException.ThrowIfNullOrEmpty(link);
        Link = link;
    }

    /// <summary>Raised after every recorded call, on the calling thread.</summary>
    public event Action<LinkTraffic, LinkTrafficSample>? Recorded;

    /// <summary>The link's name: its endpoint address.</summary>
    public string Link { get; }

    /// <summary>Calls recorded.</summary>
    public long Calls => Interlocked.Read(ref _calls);

    /// <summary>Bytes sent over all recorded calls.</summary>
    public long BytesSent => Interlocked.Read(ref _bytesSent);

    /// <summary>Bytes received over all recorded calls.</summary>
    public long BytesReceived => Interlocked.Read(ref _bytesReceived);

    /// <summary>Wall time summed over all recorded calls.</summary>
    public TimeSpan Elapsed => TimeSpan.FromTicks(Interlocked.Read(ref _elapsedTicks));

    /// <summary>Adds one call to the totals and raises <see cref="Recorded"/>.</summary>
    public void Record(long bytesSent, long bytesReceived, TimeSpan elapsed)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bytesSent);
        ArgumentOutOfRangeException.ThrowIfNegative(bytesReceived);
        Interlocked.Increment(ref _calls);
        Interlocked.Add(ref _bytesSent, bytesSent);
        Interlocked.Add(ref _bytesReceived, bytesReceived);
        Interlocked.Add(ref _elapsedTicks, elapsed.Ticks);
        Recorded?.Invoke(this, new LinkTrafficSample(bytesSent, bytesReceived, elapsed));
    }
}
