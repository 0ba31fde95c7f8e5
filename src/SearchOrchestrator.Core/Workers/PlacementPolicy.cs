namespace SearchOrchestrator.Workers;

/// <summary>
/// The cost model placement minimises: expected completion = queue wait + compute for this batch size + α + β·bytes
/// for the tensors that must move. Pure functions of the backends' measured models, so tests can control them.
/// </summary>
internal static class PlacementPolicy
{
    /// <summary>
    /// Expected completion of advancing <paramref name="rows"/> rows by <paramref name="steps"/> steps on
    /// <paramref name="backend"/>. <paramref name="stepBytesPerRow"/> is what one row's step moves when the backend is
    /// stateless (state in, state and x0-prediction out); <paramref name="moveBytes"/> is what must move once before
    /// the steps start (and <paramref name="resident"/> says the steps then ship only handles).
    /// </summary>
    public static BackendCost Estimate(IStepBackend backend, int rows, int steps, long stepBytesPerRow, long moveBytes, bool resident)
    {
        ArgumentNullException.ThrowIfNull(backend);
        ArgumentOutOfRangeException.ThrowIfLessThan(rows, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(steps);
        var max = Math.Max(1, backend.MaxBatchSize);
        var queued = backend.QueuedRows;
        var queue = queued == 0 ? TimeSpan.Zero : backend.Compute.Predict(Math.Min(queued, max)) * Math.Ceiling((double)queued / max);
        var passes = (int)Math.Ceiling((double)rows / max);
        var compute = backend.Compute.Predict(Math.Min(rows, max)) * passes * steps;
        var transfer = TimeSpan.Zero;
        if (backend.Link is { } link)
        {
            transfer = moveBytes > 0 ? link.Predict(moveBytes) : TimeSpan.Zero;
            transfer += resident
                ? link.Predict(16L * rows) // one Advance call carrying handles
                : link.Predict(stepBytesPerRow * rows) * steps;
        }
        else if (moveBytes > 0)
        {
            transfer = TimeSpan.Zero; // this process already holds what it fetched
        }

        return new BackendCost(backend, queue, compute, transfer);
    }

    /// <summary>The cheapest available backend; ties go to the earlier one (local first).</summary>
    public static BackendCost Choose(IEnumerable<BackendCost> costs)
    {
        ArgumentNullException.ThrowIfNull(costs);
        BackendCost? best = null;
        foreach (var cost in costs)
        {
            if (cost.Backend.IsAvailable && (best is null || cost.Total < best.Total))
            {
                best = cost;
            }
        }

        return best ?? throw new NoBackendException("No backend is available to run the step: every worker is out of rotation and local compute is off (Workers:UseLocal).");
    }
}

/// <summary>One backend's expected completion for a batch, by component.</summary>
internal sealed record BackendCost(IStepBackend Backend, TimeSpan Queue, TimeSpan Compute, TimeSpan Transfer)
{
    /// <summary>Queue + compute + transfer.</summary>
    public TimeSpan Total => Queue + Compute + Transfer;
}
