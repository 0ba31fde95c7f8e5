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
    /// <summary>The prior noise of a node with <paramref name="key"/> (a root at step 0).</summary>
    public static float[] Prior(RngKey key, int elements)
    {
        var state = new float[elements];
        key.FillStandardNormal(NoiseUse.Prior, 0, state);
        return state;
    }

    /// <summary>x_j drawn from q(x_j | x_i) with <paramref name="key"/>'s renoise stream: a child at an earlier step.</summary>
    public static float[] Renoise(ReadOnlySpan<float> state, StepSchedule schedule, int fromStep, int toStep, RngKey key)
    {
        ArgumentNullException.ThrowIfNull(schedule);
        var noise = new float[state.Length];
        key.FillStandardNormal(NoiseUse.Renoise, toStep, noise);
        var result = new float[noise.Length];
        GaussianProcess.Renoise(state, schedule.AlphaBarAt(fromStep), schedule.AlphaBarAt(toStep), noise, result);
        return result;
    }

    /// <summary>The request that moves a node from step <paramref name="stepIndex"/> to the next, in place.</summary>
    public static StepRequest Step(StepSchedule schedule, DdimSampler sampler, long condition, double guidance, RngKey key, int stepIndex, float[] state, float[] prediction)
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
