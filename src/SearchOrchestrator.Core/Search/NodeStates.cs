using SearchOrchestrator.Processes;
using SearchOrchestrator.Randomness;
using SearchOrchestrator.Scheduling;

namespace SearchOrchestrator.Search;

/// <summary>
/// How node states are made, in one place for the tree, the workers that hold resident nodes, and replay: a root's
/// prior, a renoised child, and the step request that moves a node. Each is a pure function of its inputs and the
/// node's key, which is what lets any backend recompute any node exactly.
/// </summary>
public static class NodeStates
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

    /// <summary>The request that moves a node from step <paramref name="stepIndex"/> to the next, in place.</summary>
    public static StepRequest Step(StepSchedule schedule, ISampler sampler, long condition, double guidance, RngKey key, int stepIndex, float[] state, float[] prediction)
    {
        ArgumentNullException.ThrowIfNull(schedule);
        return new StepRequest
        {
            State = state,
            Prediction = prediction,
            StepIndex = stepIndex,
            Timestep = schedule.TimestepAt(stepIndex),
            AlphaBarFrom = schedule.AlphaBarAt(stepIndex),
            AlphaBarTo = schedule.AlphaBarAt(stepIndex + 1),
            Condition = condition,
            Guidance = guidance,
            Sampler = sampler,
            Key = key,
        };
    }
}
