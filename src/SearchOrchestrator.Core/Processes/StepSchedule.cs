namespace SearchOrchestrator.Processes;

/// <summary>
/// The N sampling steps t_0 &gt; … &gt; t_{N−1} chosen from a training schedule with "trailing" spacing
/// (t_0 = T − 1, so sampling starts from the noisiest trained level; Lin et al., 2024). A node at step
/// index i (0 ≤ i ≤ N) sits at noise level ᾱ(t_i); step index N is the clean sample (ᾱ = 1).
/// </summary>
public sealed class StepSchedule
{
    private readonly int[] _timesteps;
    private readonly double[] _alphaBars;

    internal StepSchedule(NoiseSchedule schedule, int steps)
    {
        if (steps < 1 || steps > schedule.TrainingSteps)
        {
            throw new InvalidRequestException("steps", $"steps must be between 1 and {schedule.TrainingSteps} (the model's training steps), got {steps}.");
        }

        _timesteps = new int[steps];
        _alphaBars = new double[steps + 1];
        var trainingSteps = schedule.TrainingSteps;
        for (var i = 0; i < steps; i++)
        {
            _timesteps[i] = (int)Math.Round((double)trainingSteps * (steps - i) / steps) - 1;
            _alphaBars[i] = schedule.AlphaBar(_timesteps[i]);
        }

        _alphaBars[steps] = 1.0;
    }

    /// <summary>N, the number of sampling steps.</summary>
    public int Count => _timesteps.Length;

    /// <summary>The training timestep the model is evaluated at for step index i (0 ≤ i &lt; N).</summary>
    public int TimestepAt(int stepIndex) => _timesteps[stepIndex];

    /// <summary>ᾱ at step index i (0 ≤ i ≤ N); 1 at i = N.</summary>
    public double AlphaBarAt(int stepIndex) => _alphaBars[stepIndex];
}
