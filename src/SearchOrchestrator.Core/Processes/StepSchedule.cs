namespace SearchOrchestrator.Processes;

/// <summary>
/// The N sampling steps t_0 &gt; … &gt; t_{N−1} chosen from a training schedule, by default with "trailing" spacing
/// (t_0 = T − 1, so sampling starts from the noisiest trained level; Lin et al., 2024; a diffusers scheduler config may
/// ask for another <see cref="TimestepSpacing"/>). A node at step index i (0 ≤ i ≤ N) sits at noise level ᾱ(t_i); step
/// index N is the clean sample (ᾱ = 1, or ᾱ(0) when the spacing says so).
/// For the masked process (<see cref="Masked(int)"/>) the level is the share of unmasked positions, α_i = i/N, and the
/// model time is the share still masked, t_i = 1 − α_i (the linear schedule of MDLM, Sahoo et al., 2024).
/// </summary>
public sealed class StepSchedule
{
    // Worked out per step rather than stored: a search's memory then does not grow with its step count.
    private readonly NoiseSchedule? _training;
    private readonly TimestepSpacing _spacing = TimestepSpacing.Trailing;

    internal StepSchedule(NoiseSchedule schedule, int steps, TimestepSpacing? spacing = null)
    {
        if (steps < 1 || steps > schedule.TrainingSteps)
        {
            throw new InvalidRequestException("steps", $"steps must be between 1 and {schedule.TrainingSteps} (the model's training steps), got {steps}.");
        }

        _training = schedule;
        Count = steps;
        _spacing = spacing ?? TimestepSpacing.Trailing;
        _ = _spacing.Timestep(schedule.TrainingSteps, steps, 0); // the first step is the largest: refuse a count past the schedule here
    }

    private StepSchedule(int steps) => Count = steps;

    /// <summary>N, the number of sampling steps.</summary>
    public int Count { get; }

    /// <summary>The model time the model is evaluated at for step index i (0 ≤ i &lt; N): a training timestep (gaussian) or the masked share (masked).</summary>
    public double TimestepAt(int stepIndex)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(stepIndex);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(stepIndex, Count);
        return _training is null
            ? (double)(Count - stepIndex) / Count
            : _spacing.Timestep(_training.TrainingSteps, Count, stepIndex);
    }

    /// <summary>ᾱ at step index i (0 ≤ i ≤ N); 1 at i = N.</summary>
    public double AlphaBarAt(int stepIndex)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(stepIndex);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(stepIndex, Count);
        return stepIndex == Count ? (_training is null || _spacing.FinalAlphaIsOne ? 1.0 : _training.AlphaBar(0))
            : _training is null ? (double)stepIndex / Count
            : _training.AlphaBar((int)TimestepAt(stepIndex));
    }

    /// <summary>The masked process's N steps: α_i = i/N unmasked, model time t_i = (N − i)/N.</summary>
    internal static StepSchedule Masked(int steps) => new(steps);
}
