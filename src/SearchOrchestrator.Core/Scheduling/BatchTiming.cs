namespace SearchOrchestrator.Scheduling;

/// <summary>What one queued item experienced: the batch it joined and the time it spent waiting and computing.</summary>
/// <param name="BatchId">The batcher-local number of the batch, so callers can count distinct batches joined.</param>
/// <param name="BatchRows">Rows in that batch (all requests together).</param>
/// <param name="Queued">Time from enqueue to the start of the batch's pass.</param>
/// <param name="Compute">The whole batch's pass, including the per-item updates after it.</param>
public readonly record struct BatchTiming(long BatchId, int BatchRows, TimeSpan Queued, TimeSpan Compute);
