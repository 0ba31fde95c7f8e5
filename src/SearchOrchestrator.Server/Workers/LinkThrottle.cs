namespace SearchOrchestrator.Server.Workers;

/// <summary>
/// An artificial link for measuring and testing: every call waits <see cref="Latency"/> plus its request bytes at
/// <see cref="BytesPerSecond"/> before it is sent, and its response bytes at that rate once received. Put it in a
/// worker client's HTTP pipeline to give a loopback worker the latency and bandwidth of a slower link.
/// </summary>
public sealed class LinkThrottle : DelegatingHandler
{
    /// <summary>Creates the throttle over a fresh HTTP/2-capable handler.</summary>
    public LinkThrottle(TimeSpan latency, double bytesPerSecond)
        : base(new SocketsHttpHandler { EnableMultipleHttp2Connections = true })
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(latency, TimeSpan.Zero);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(bytesPerSecond);
        Latency = latency;
        BytesPerSecond = bytesPerSecond;
    }

    /// <summary>The injected round-trip latency α.</summary>
    public TimeSpan Latency { get; }

    /// <summary>The injected bandwidth, 1/β.</summary>
    public double BytesPerSecond { get; }

    /// <inheritdoc />
    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        long sent = 0;
        if (request.Content is { } content)
        {
            var body = await content.ReadAsByteArrayAsync(cancellationToken).ConfigureAwait(false);
            sent = body.Length;
            request.Content = Copy(content, body);
        }

        await Task.Delay(Latency + Transfer(sent), cancellationToken).ConfigureAwait(false);
        var response = await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
        var received = await response.Content.ReadAsByteArrayAsync(cancellationToken).ConfigureAwait(false);
        response.Content = Copy(response.Content, received);
        await Task.Delay(Transfer(received.Length), cancellationToken).ConfigureAwait(false);
        return response;
    }

    private TimeSpan Transfer(long bytes) => TimeSpan.FromSeconds(bytes / BytesPerSecond);

    private static ByteArrayContent Copy(HttpContent original, byte[] body)
    {
        var copy = new ByteArrayContent(body);
        foreach (var header in original.Headers)
        {
            copy.Headers.TryAddWithoutValidation(header.Key, header.Value);
        }

        return copy;
    }
}
