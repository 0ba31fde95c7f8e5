using Polly;
using Polly.Retry;

namespace SearchOrchestrator.Workers;

/// <summary>
/// The one retry/backoff policy of every remote call site (worker calls, joining backends, a worker registering with
/// its orchestrator): a Polly pipeline retrying with exponential backoff and jitter on a <see cref="TimeProvider"/>, as
/// grpc-dotnet's <c>ExponentialBackoffPolicy</c> does, never a loop per call site.
/// </summary>
public static class RetryPolicy
{
    /// <summary>The longest backoff between two attempts.</summary>
    public static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(30);

    /// <summary>
    /// A pipeline that retries what <paramref name="shouldRetry"/> accepts up to <paramref name="maxRetries"/> times
    /// (<see cref="int.MaxValue"/>: until it succeeds or is cancelled), the first after about <paramref name="firstDelay"/>
    /// and each later one about twice as long, at most <see cref="MaxBackoff"/>. <paramref name="onRetry"/> hears of
    /// each failure that will be retried and the delay before the retry. The caller's cancellation is never retried.
    /// </summary>
    public static ResiliencePipeline Create(
        int maxRetries,
        TimeSpan firstDelay,
        Func<Exception, bool> shouldRetry,
        TimeProvider? time = null,
        Action<Exception, TimeSpan>? onRetry = null)
    {
        ArgumentNullException.ThrowIfNull(shouldRetry);
        if (maxRetries == 0)
        {
            return ResiliencePipeline.Empty;
        }

        return new ResiliencePipelineBuilder { TimeProvider = time ?? TimeProvider.System }.AddRetry(new RetryStrategyOptions
        {
            ShouldHandle = args => ValueTask.FromResult(
                args.Outcome.Exception is { } error && !args.Context.CancellationToken.IsCancellationRequested && shouldRetry(error)),
            MaxRetryAttempts = maxRetries,
            BackoffType = DelayBackoffType.Exponential,
            UseJitter = true,
            Delay = firstDelay,
            MaxDelay = MaxBackoff,
            OnRetry = args =>
            {
                onRetry?.Invoke(args.Outcome.Exception!, args.RetryDelay);
                return ValueTask.CompletedTask;
            },
        }).Build();
    }
}
