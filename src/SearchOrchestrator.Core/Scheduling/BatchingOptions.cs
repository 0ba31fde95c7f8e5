namespace SearchOrchestrator.Scheduling;

/// <summary>How the batcher of one (model, backend) queue forms batches (configuration section <c>Batching</c>).</summary>
public sealed record BatchingOptions
{
    /// <summary>The configuration section these options bind from.</summary>
    public const string SectionName = "Batching";

    /// <summary>The most rows one forward pass may hold; a guided step takes two rows. Default 64.</summary>
    public int MaxBatchSize { get; init; } = 64;

    /// <summary>
    /// How long a batcher that has work but not a full batch waits for more before it runs. Default 1 ms:
    /// long enough for the nodes a search advances together to meet, short next to a forward pass.
    /// </summary>
    public TimeSpan MaxQueueDelay { get; init; } = TimeSpan.FromMilliseconds(1);

    /// <summary>Queued items a queue holds before callers wait (backpressure; nothing is dropped). Default 4096.</summary>
    public int QueueCapacity { get; init; } = 4096;

    /// <summary>
    /// Prompt embeddings each text-to-image pipeline keeps for later requests (a stage setting): past it the least recently
    /// used go, never one a running search uses. Default 1024.
    /// </summary>
    public int PromptCacheCapacity { get; init; } = 1024;

    /// <summary>Checks the settings, naming each bad one.</summary>
    public IReadOnlyList<string> Validate()
    {
        var failures = new List<string>();
        if (MaxBatchSize < 2)
        {
            failures.Add($"{SectionName}:MaxBatchSize must be at least 2 (a guided step takes two rows), got {MaxBatchSize}.");
        }

        if (MaxQueueDelay < TimeSpan.Zero)
        {
            failures.Add($"{SectionName}:MaxQueueDelay must not be negative, got {MaxQueueDelay}.");
        }

        if (QueueCapacity < 1)
        {
            failures.Add($"{SectionName}:QueueCapacity must be at least 1, got {QueueCapacity}.");
        }

        if (PromptCacheCapacity < 1)
        {
            failures.Add($"{SectionName}:PromptCacheCapacity must be at least 1, got {PromptCacheCapacity}.");
        }

        return failures;
    }
}
