namespace SearchOrchestrator.Processes;

/// <summary>
/// The N sampling steps t_0 &gt; … &gt; t_{N−1} chosen from a training schedule with "trailing" spacing
/// (t_0 = T − 1, so sampling starts from the noisiest trained level; Lin et al., 2024). A node at step
/// index i (0 ≤ i ≤ N) sits at noise level ᾱ(t_i); step index N is the clean sample (ᾱ = 1).
/// For the masked process (<see cref="Masked(int)"/>) the level is the share of unmasked positions, α_i = i/N, and the
/// model time is the share still masked, t_i = 1 − α_i (the linear schedule of MDLM, Sahoo et al., 2024).
/// </summary>
public sealed class StepSchedule
{
    private readonly double[] _timesteps;
    private readonly double[] _alphaBars;

    internal StepSchedule(NoiseSchedule schedule, int steps)
    {
        if (steps < 1 || steps > schedule.TrainingSteps)
        {
            throw new InvalidRequestException("steps", $"steps must be between 1 and {schedule.TrainingSteps} (the model's training steps), got {steps}.");
        }

        _timesteps = new double[steps];
        _alphaBars = new double[steps + 1];
        var trainingSteps = schedule.TrainingSteps;
        for (var i = 0; i < steps; i++)
        {
            var t = (int)Math.Round((double)trainingSteps * (steps - i) / steps) - 1;
            _timesteps[i] = t;
            _alphaBars[i] = schedule.AlphaBar(t);
        }

        _alphaBars[steps] = 1.0;
    }

    private StepSchedule(double[] timesteps, double[] alphaBars)
    {
        _timesteps = timesteps;
        _alphaBars = alphaBars;
    }

    /// <summary>N, the number of sampling steps.</summary>
    public int Count => _timesteps.Length;

    /// <summary>The model time the model is evaluated at for step index i (0 ≤ i &lt; N): a training timestep (gaussian) or the masked share (masked).</summary>
    public double TimestepAt(int stepIndex) => _timesteps[stepIndex];

    /// <summary>ᾱ at step index i (0 ≤ i ≤ N); 1 at i = N.</summary>
    public double AlphaBarAt(int stepIndex) => _alphaBars[stepIndex];

    /// <summary>The masked process's N steps: α_i = i/N unmasked, model time t_i = (N − i)/N.</summary>
    internal static StepSchedule Masked(int steps)
    {
        var times = new double[steps];
        var levels = new double[steps + 1];
        for (var i = 0; i <= steps; i++)
        {
            levels[i] = (double)i / steps;
            if (i < steps)
            {
                times[i] = (double)(steps - i) / steps;
            }
        }

        return new StepSchedule(times, levels);
    }
}
