using Grpc.Core;
using Microsoft.Extensions.Options;
using SearchOrchestrator.Search;

namespace SearchOrchestrator.Server.Grpc;

/// <summary>
/// Admits searches: counts those in flight against <see cref="ServingOptions.MaxConcurrentSearches"/> (past it, calls are
/// refused, not queued) and refuses one whose plan may spend more than <see cref="ServingOptions.MaxNfePerRequest"/>.
/// </summary>
internal sealed class SearchAdmission(IOptions<ServingOptions> options)
{
    private int _running;

    /// <summary>
    /// Refuses a search whose estimate (the strategy's cost plan capped by its budget, plus a <c>fork_at: auto</c>
    /// calibration it would run first) may spend more than the per-request cap, with ResourceExhausted.
    /// </summary>
    public void CheckNfe(SearchEstimate estimate)
    {
        var cap = options.Value.MaxNfePerRequest;
        if (estimate.NfeWithCalibration > cap)
        {
            var including = estimate.CalibrationNfe > 0 ? $" ({estimate.CalibrationNfe} of them calibrating fork_at: auto; give fork_at a step to skip it)" : string.Empty;
            throw new RpcException(new Status(StatusCode.ResourceExhausted, $"this search may spend {estimate.NfeWithCalibration} NFE{including}, over the server's cap of {cap} per request ({ServingOptions.SectionName}:MaxNfePerRequest); lower the strategy's size or set budget.max_nfe."));
        }
    }

    /// <summary>A slot to dispose when the search ends, or null when the server is full.</summary>
    public IDisposable? TryEnter()
    {
        if (Interlocked.Increment(ref _running) > options.Value.MaxConcurrentSearches)
        {
            Interlocked.Decrement(ref _running);
            return null;
        }

        return new Slot(this);
    }

    private sealed class Slot(SearchAdmission admission) : IDisposable
    {
        private int _disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                Interlocked.Decrement(ref admission._running);
            }
        }
    }
}
