using SearchOrchestrator.Randomness;

namespace SearchOrchestrator.Processes;

/// <summary>
/// The gaussian process's sampler: DDIM with η for steps (<see cref="DdimSampler"/>), standard normal priors, the
/// forward kernel q(x_j | x_i) for renoise, and λ·x + √(1 − λ²)·z neighbours for zero-order search.
/// </summary>
internal sealed class GaussianSampler(GaussianProcess process, SamplerSettings settings, DdimSampler ddim) : ISampler
{
    public SamplerSettings Settings { get; } = settings;

    public bool IsStochastic => ddim.IsStochastic;

    public bool PriorIsRandom => true;

    public void Update(ReadOnlySpan<float> output, SamplerStep step, Span<float> state, Span<float> prediction)
    {
        var epsilon = new float[state.Length];
        var noise = new float[state.Length];
        process.ToEpsilonAndSample(output, state, step.AlphaBarFrom, epsilon, prediction);
        if (ddim.Sigma(step.AlphaBarFrom, step.AlphaBarTo) > 0)
        {
            step.Key.FillStandardNormal(NoiseUse.Step, step.StepIndex, noise);
        }

        ddim.Step(epsilon, prediction, step.AlphaBarFrom, step.AlphaBarTo, noise, state);
    }

    public void Prior(RngKey key, Span<float> state) => key.FillStandardNormal(NoiseUse.Prior, 0, state);

    public void Neighbour(ReadOnlySpan<float> pivotPrior, double similarity, Span<float> state)
    {
        var keep = similarity;
        var fresh = Math.Sqrt(1 - (similarity * similarity));
        for (var k = 0; k < state.Length; k++)
        {
            state[k] = (float)((keep * pivotPrior[k]) + (fresh * state[k]));
        }
    }

    public void Renoise(ReadOnlySpan<float> state, StepSchedule schedule, int fromStep, int toStep, RngKey key, bool forFork, Span<float> destination)
    {
        var noise = new float[state.Length];
        key.FillStandardNormal(NoiseUse.Renoise, toStep, noise);
        GaussianProcess.Renoise(state, schedule.AlphaBarAt(fromStep), schedule.AlphaBarAt(toStep), noise, destination);
    }
}
