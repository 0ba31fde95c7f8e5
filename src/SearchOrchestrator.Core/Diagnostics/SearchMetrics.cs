using System.Diagnostics.Metrics;

namespace SearchOrchestrator.Diagnostics;

/// <summary>
/// The engine's instruments (meter <c>SearchOrchestrator</c>), OpenTelemetry-style names with units: searches by
/// strategy and outcome, NFE spent and saved, verifier calls, batch sizes, and queue and compute time.
/// </summary>
internal static class SearchMetrics
{
    /// <summary>The meter's name, for exporters to subscribe to.</summary>
    public const string MeterName = "SearchOrchestrator";

    private static readonly Meter Meter = new(MeterName);

    /// <summary>
    /// Bucket boundaries (seconds) for queue, batch and transfer times: a small model's pass or a lone search's queue
    /// wait takes well under a millisecond, a loaded queue or a large batch seconds.
    /// </summary>
    public static readonly IReadOnlyList<double> DurationBuckets = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

    /// <summary>Bucket boundaries for rows per batch: powers of two up to the largest batches.</summary>
    public static readonly IReadOnlyList<int> RowBuckets = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];

    private static readonly InstrumentAdvice<double> Durations = new() { HistogramBucketBoundaries = DurationBuckets };

    /// <summary>Calls answered, by strategy and gRPC status (recorded by the service).</summary>
    public static readonly Counter<long> Requests = Meter.CreateCounter<long>("searchorch.requests", "{request}", "Search calls answered, by strategy and status.");

    internal static readonly Counter<long> Searches = Meter.CreateCounter<long>("searchorch.searches", "{search}", "Searches finished, by strategy and outcome.");
    internal static readonly UpDownCounter<long> ActiveSearches = Meter.CreateUpDownCounter<long>("searchorch.searches.active", "{search}", "Searches running now.");
    internal static readonly Counter<long> Nfe = Meter.CreateCounter<long>("searchorch.nfe", "{evaluation}", "Denoiser evaluations spent.");
    internal static readonly Counter<long> NfeSaved = Meter.CreateCounter<long>("searchorch.nfe.saved", "{evaluation}", "Evaluations that sharing saved against independent runs.");
    internal static readonly Counter<long> VerifierCalls = Meter.CreateCounter<long>("searchorch.verifier.calls", "{call}", "Verifier calls (one per sample per verifier).");
    internal static readonly Histogram<int> BatchRows = Meter.CreateHistogram("searchorch.batch.rows", "{row}", "Rows in each batch a pump ran.", tags: null, advice: new InstrumentAdvice<int> { HistogramBucketBoundaries = RowBuckets });
    internal static readonly Histogram<double> BatchDuration = Meter.CreateHistogram("searchorch.batch.duration", "s", "Time of each batch, forward pass and per-item updates.", tags: null, advice: Durations);
    internal static readonly Counter<long> LinkBytes = Meter.CreateCounter<long>("searchorch.link.bytes", "By", "Bytes moved over each worker link, by direction.");
    internal static readonly Histogram<double> LinkTransferDuration = Meter.CreateHistogram("searchorch.link.transfer.duration", "s", "Transfer time of each call over a worker link (elapsed minus the worker's own time).", tags: null, advice: Durations);
    internal static readonly Counter<long> WorkerFailures = Meter.CreateCounter<long>("searchorch.worker.failures", "{failure}", "Worker calls that failed, missed their deadline or returned bad data.");
    internal static readonly Counter<long> ReplayNfe = Meter.CreateCounter<long>("searchorch.nfe.replayed", "{evaluation}", "Evaluations spent recomputing nodes a failed worker held.");
    internal static readonly Histogram<double> QueueDuration = Meter.CreateHistogram("searchorch.queue.duration", "s", "Time each item waited in its queue.", tags: null, advice: Durations);
}
