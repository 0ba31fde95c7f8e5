namespace SearchOrchestrator.Links;

/// <summary>
/// The measured cost of one link: every transfer's bytes and time, and a least-squares fit of
/// time = α + β·bytes over the probes taken when the worker joined and the most recent real traffic.
/// The fit uses the fastest observation of each payload size in the window: what the link can do. Scheduling
/// hiccups on a busy machine only ever lengthen a transfer, and waiting behind other work is placement's queue term.
/// Thread-safe.
/// </summary>
public sealed class LinkCostModel
{
    /// <summary>Samples the fit keeps (probes and real traffic together); older ones are forgotten.</summary>
    public const int Window = 256;

    private readonly object _gate = new();
    private readonly Queue<(double Bytes, double Seconds)> _samples = new();
    private LinkFit _fit = LinkFit.Unknown;
    private long _bytesSent;
    private long _bytesReceived;
    private long _transfers;
    private TimeSpan _transferTime;
    private TimeSpan _lastRoundTrip;

    /// <summary>Creates the model of the link called <paramref name="name"/>.</summary>
    public LinkCostModel(string name)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        Name = name;
    }

    /// <summary>The link's name: the worker's endpoint.</summary>
    public string Name { get; }

    /// <summary>The current fit (refitted after every sample).</summary>
    public LinkFit Fit
    {
        get
        {
            lock (_gate)
            {
                return _fit;
            }
        }
    }

    /// <summary>Totals since the link joined.</summary>
    public LinkUsage Usage
    {
        get
        {
            lock (_gate)
            {
                return new LinkUsage(Name, _bytesSent, _bytesReceived, _transferTime, _transfers);
            }
        }
    }

    /// <summary>The latest round trip's transfer time (elapsed minus the worker's own handling time).</summary>
    public TimeSpan LastRoundTrip
    {
        get
        {
            lock (_gate)
            {
                return _lastRoundTrip;
            }
        }
    }

    /// <summary>The fastest transfer time seen for each payload size in the window, in seconds.</summary>
    public IReadOnlyDictionary<long, double> Samples()
    {
        lock (_gate)
        {
            return _samples.GroupBy(s => (long)s.Bytes).ToDictionary(g => g.Key, g => g.Min(s => s.Seconds));
        }
    }

    /// <summary>Predicted time to move <paramref name="bytes"/> in one call (α + β·bytes).</summary>
    public TimeSpan Predict(long bytes) => Fit.Predict(bytes);

    /// <summary>Records one call: bytes each way and its transfer time; refits α and β.</summary>
    public void Record(Transfer transfer) => Add(transfer, refit: true);

    /// <summary>
    /// Records one call in the totals and metrics without refitting: for calls whose transfer time is itself inferred
    /// from the fit (a server that reports no handling time of its own, so its replies cannot tell transfer from work).
    /// </summary>
    public void RecordUsage(Transfer transfer) => Add(transfer, refit: false);

    private void Add(Transfer transfer, bool refit)
    {
        Diagnostics.SearchMetrics.LinkBytes.Add(transfer.BytesSent, new("link", Name), new("direction", "sent"));
        Diagnostics.SearchMetrics.LinkBytes.Add(transfer.BytesReceived, new("link", Name), new("direction", "received"));
        Diagnostics.SearchMetrics.LinkTransferDuration.Record(transfer.Time.TotalSeconds, new KeyValuePair<string, object?>("link", Name));
        lock (_gate)
        {
            _bytesSent += transfer.BytesSent;
            _bytesReceived += transfer.BytesReceived;
            _transferTime += transfer.Time;
            _transfers++;
            _lastRoundTrip = transfer.Time;
            if (!refit)
            {
                return;
            }

            _samples.Enqueue((transfer.BytesSent + transfer.BytesReceived, Math.Max(0, transfer.Time.TotalSeconds)));
            while (_samples.Count > Window)
            {
                _samples.Dequeue();
            }

            _fit = LinkFit.LeastSquares([.. _samples.GroupBy(x => x.Bytes).Select(g => (g.Key, g.Min(x => x.Seconds)))]);
        }
    }
}

/// <summary>
/// A fitted link: <see cref="Latency"/> α, <see cref="SecondsPerByte"/> β, and the fit's R² over
/// <see cref="Samples"/> samples.
/// </summary>
public sealed record LinkFit(TimeSpan Latency, double SecondsPerByte, double RSquared, int Samples)
{
    /// <summary>Before any measurement: free and instant (a link is probed when it joins).</summary>
    public static LinkFit Unknown { get; } = new(TimeSpan.Zero, 0, 0, 0);

    /// <summary>1 / β in bytes per second (infinity when β is zero).</summary>
    public double BytesPerSecond => SecondsPerByte <= 0 ? double.PositiveInfinity : 1 / SecondsPerByte;

    /// <summary>α + β·bytes.</summary>
    public TimeSpan Predict(long bytes) => Latency + TimeSpan.FromSeconds(SecondsPerByte * bytes);

    /// <summary>
    /// The ordinary least-squares line through (bytes, seconds). With one distinct payload size the slope is
    /// unknown and taken as zero; α and β are clamped at zero (a link cannot be faster than free).
    /// </summary>
    public static LinkFit LeastSquares(IReadOnlyCollection<(double Bytes, double Seconds)> samples)
    {
        ArgumentNullException.ThrowIfNull(samples);
        var n = samples.Count;
        if (n == 0)
        {
            return Unknown;
        }

        var meanX = samples.Average(s => s.Bytes);
        var meanY = samples.Average(s => s.Seconds);
        double sxx = 0, sxy = 0, syy = 0;
        foreach (var (x, y) in samples)
        {
            sxx += (x - meanX) * (x - meanX);
            sxy += (x - meanX) * (y - meanY);
            syy += (y - meanY) * (y - meanY);
        }

        var beta = sxx > 0 ? Math.Max(0, sxy / sxx) : 0;
        var alpha = Math.Max(0, meanY - (beta * meanX));
        var residual = samples.Sum(s => Math.Pow(s.Seconds - (alpha + (beta * s.Bytes)), 2));
        var r2 = syy > 0 ? 1 - (residual / syy) : 1;
        return new LinkFit(TimeSpan.FromSeconds(alpha), beta, r2, n);
    }
}

/// <summary>One call's traffic: bytes sent and received, and the time spent moving them.</summary>
public readonly record struct Transfer(long BytesSent, long BytesReceived, TimeSpan Time)
{
    /// <summary>Adds two transfers.</summary>
    public static Transfer operator +(Transfer a, Transfer b) => new(a.BytesSent + b.BytesSent, a.BytesReceived + b.BytesReceived, a.Time + b.Time);

    /// <summary>This transfer's share <paramref name="fraction"/> (0..1) of bytes and time.</summary>
    public Transfer Share(double fraction) => new((long)Math.Round(BytesSent * fraction), (long)Math.Round(BytesReceived * fraction), Time * fraction);
}

/// <summary>What one link carried: bytes each way, time spent moving them, and how many calls.</summary>
public sealed record LinkUsage(string Link, long BytesSent, long BytesReceived, TimeSpan TransferTime, long Calls)
{
    /// <summary>In a search's cost account, the stage the traffic served (<see cref="Workers.StageNames"/>); null for a link's whole traffic.</summary>
    public string? Stage { get; init; }

    /// <summary>Bytes in both directions.</summary>
    public long Bytes => BytesSent + BytesReceived;
}
