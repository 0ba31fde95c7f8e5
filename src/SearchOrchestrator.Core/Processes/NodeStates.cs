using SearchOrchestrator.Randomness;

namespace SearchOrchestrator.Processes;

/// <summary>
/// How node states start, in one place for the tree's executors, replay and the workers that hold resident nodes: a
/// root's prior, and a child made from its parent's state (<see cref="Start"/>). Each is a pure function of its inputs
/// and the node's key, which is what lets any backend recompute any node exactly. Steps are
/// <c>StepLoop</c>'s.
/// </summary>
internal static class NodeStates
{
    /// <summary>The state of a root at step 0 with <paramref name="key"/>.</summary>
    public static float[] Prior(ISampler sampler, RngKey key, int elements)
    {
        ArgumentNullException.ThrowIfNull(sampler);
        var state = new float[elements];
        sampler.Prior(key, state);
        return state;
    }

    /// <summary>A child at the earlier step <paramref name="toStep"/>, drawn with its own <paramref name="key"/>.</summary>
    public static float[] Renoise(ISampler sampler, ReadOnlySpan<float> state, StepSchedule schedule, int fromStep, int toStep, RngKey key, bool forFork)
    {
        ArgumentNullException.ThrowIfNull(sampler);
        var result = new float[state.Length];
        sampler.Renoise(state, schedule, fromStep, toStep, key, forFork, result);
        return result;
    }

    /// <summary>The step a child that starts as <paramref name="start"/> from a parent at <paramref name="parentStep"/> is at.</summary>
    /// <param name="start">How it starts.</param>
    /// <param name="parentStep">The parent's step index.</param>
    /// <param name="toStep">The step a renoised child goes back to (ignored otherwise).</param>
    public static int StartStep(ChildStart start, int parentStep, int toStep) => start switch
    {
        ChildStart.Copy => parentStep,
        ChildStart.Prior => 0,
        _ => toStep,
    };

    /// <summary>
    /// The state of a child that starts as <paramref name="start"/> from its parent's <paramref name="parent"/> at
    /// <paramref name="parentStep"/>: a copy, fresh prior noise from the child's key, or the parent's state renoised back
    /// to <paramref name="toStep"/> with the child's key.
    /// </summary>
    public static float[] Start(ChildStart start, ISampler sampler, StepSchedule schedule, ReadOnlySpan<float> parent, int parentStep, int toStep, RngKey key) => start switch
    {
        ChildStart.Copy => parent.ToArray(),
        ChildStart.Prior => Prior(sampler, key, parent.Length),
        ChildStart.Renoise or ChildStart.ForkRenoise => Renoise(sampler, parent, schedule, parentStep, toStep, key, forFork: start == ChildStart.ForkRenoise),
        _ => throw new ArgumentOutOfRangeException(nameof(start), start, "unknown child start."),
    };
}
