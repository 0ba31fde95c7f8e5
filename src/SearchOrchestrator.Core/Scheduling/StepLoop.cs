using SearchOrchestrator.Processes;
using SearchOrchestrator.Randomness;

namespace SearchOrchestrator.Scheduling;

/// <summary>
/// The loop that moves node states one step at a time, written once for the search tree, replay and a worker's nodes:
/// what each step's request holds (the trajectory's schedule, sampler, condition and guidance, the node's key), and the
/// producer registration that lets a batcher run a batch as soon as every loop's step is in it.
/// </summary>
/// <param name="Schedule">The N step times.</param>
/// <param name="Sampler">The sampler that applies each node's update.</param>
/// <param name="Condition">The condition id.</param>
/// <param name="Guidance">Classifier-free guidance scale (1 = none).</param>
/// <param name="Unconditional">The condition id of guidance's unconditional row; null: the model's null id (a pipeline uses its negative prompt's).</param>
internal sealed record StepLoop(StepSchedule Schedule, ISampler Sampler, long Condition, double Guidance, long? Unconditional = null)
{
    /// <summary>
    /// Runs <paramref name="loop"/> once per item, all at once. On <paramref name="batcher"/> (null: the steps run
    /// elsewhere) every loop is registered as a producer before any starts and until it ends, so a forming batch runs as
    /// soon as all their steps are in it, and never before: a loop registered late would split the group's first batch.
    /// </summary>
    public static async Task<TResult[]> RunAsync<TItem, TResult>(IReadOnlyList<TItem> items, DenoiserBatcher? batcher, Func<TItem, Task<TResult>> loop)
    {
        ArgumentNullException.ThrowIfNull(items);
        ArgumentNullException.ThrowIfNull(loop);
        var producers = items.Select(_ => batcher?.Producer()).ToList();
        return await Task.WhenAll(items.Select(async (item, i) =>
        {
            using var producer = producers[i];
            return await loop(item).ConfigureAwait(false);
        })).ConfigureAwait(false);
    }

    /// <inheritdoc cref="RunAsync{TItem, TResult}"/>
    public static Task RunAsync<TItem>(IReadOnlyList<TItem> items, DenoiserBatcher? batcher, Func<TItem, Task> loop)
    {
        ArgumentNullException.ThrowIfNull(loop);
        return RunAsync(items, batcher, async item =>
        {
            await loop(item).ConfigureAwait(false);
            return true;
        });
    }

    /// <summary>The request that moves a node from step <paramref name="stepIndex"/> to the next, in place.</summary>
    public StepRequest Request(RngKey key, int stepIndex, float[] state, float[] prediction) => new()
    {
        State = state,
        Prediction = prediction,
        StepIndex = stepIndex,
        Timestep = Schedule.TimestepAt(stepIndex),
        AlphaBarFrom = Schedule.AlphaBarAt(stepIndex),
        AlphaBarTo = Schedule.AlphaBarAt(stepIndex + 1),
        Condition = Condition,
        Guidance = Guidance,
        Unconditional = Unconditional,
        Sampler = Sampler,
        Key = key,
    };

    /// <summary>
    /// Moves <paramref name="state"/> (and its x0-prediction) from step <paramref name="from"/> to <paramref name="to"/>,
    /// one step at a time: <paramref name="step"/> runs each request (on a batcher or a backend), then
    /// <paramref name="stepped"/> learns the step index reached and what the step returned.
    /// </summary>
    public async Task AdvanceAsync<TOutcome>(RngKey key, float[] state, float[] prediction, int from, int to, Func<StepRequest, Task<TOutcome>> step, Action<int, TOutcome> stepped)
    {
        ArgumentNullException.ThrowIfNull(step);
        ArgumentNullException.ThrowIfNull(stepped);
        for (var i = from; i < to; i++)
        {
            stepped(i + 1, await step(Request(key, i, state, prediction)).ConfigureAwait(false));
        }
    }
}
