using Microsoft.Extensions.Options;

namespace SearchOrchestrator.Server.Grpc;

/// <summary>Counts searches in flight against <see cref="ServingOptions.MaxConcurrentSearches"/>; past it, calls are refused, not queued.</summary>
internal sealed class SearchAdmission(IOptions<ServingOptions> options)
{
    private int _running;

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
