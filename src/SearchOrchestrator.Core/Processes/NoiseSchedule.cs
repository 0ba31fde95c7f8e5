namespace SearchOrchestrator.Processes;

/// <summary>The β schedule a gaussian denoiser was trained with, and its cumulative products ᾱ_t.</summary>
internal sealed class NoiseSchedule
{
    private readonly double[] _betas;
    private readonly double[] _alphaBars;

    private NoiseSchedule(double[] betas)
    {
        _betas = betas;
        _alphaBars = new double[betas.Length];
        var product = 1.0;
        for (var t = 0; t < betas.Length; t++)
        {
            product *= 1.0 - betas[t];
            _alphaBars[t] = product;
        }
    }

    /// <summary>Number of training steps T; model times run over 0 … T − 1.</summary>
    public int TrainingSteps => _betas.Length;

    /// <summary>β_t for each training step.</summary>
    public IReadOnlyList<double> Betas => _betas;

    /// <summary>
    /// Linearly spaced β from <paramref name="betaStart"/> to <paramref name="betaEnd"/> (Ho et al., 2020;
    /// the standard DDPM schedule is 1000 steps from 1e-4 to 0.02).
    /// </summary>
    public static NoiseSchedule Linear(int trainingSteps, double betaStart, double betaEnd)
    {
        Validate(trainingSteps);
        if (!(betaStart > 0 && betaStart <= betaEnd && betaEnd < 1))
        {
            throw new ArgumentException($"Linear β needs 0 < betaStart <= betaEnd < 1, got {betaStart} and {betaEnd}.");
        }

        var betas = new double[trainingSteps];
        for (var t = 0; t < trainingSteps; t++)
        {
            betas[t] = trainingSteps == 1 ? betaStart : betaStart + ((betaEnd - betaStart) * t / (trainingSteps - 1));
        }

        return new NoiseSchedule(betas);
    }

    /// <summary>
    /// Stable Diffusion's "scaled_linear" schedule: √β linearly spaced from √<paramref name="betaStart"/> to
    /// √<paramref name="betaEnd"/>, squared (SD 1.x/2.x: 1000 steps from 0.00085 to 0.012).
    /// </summary>
    public static NoiseSchedule ScaledLinear(int trainingSteps, double betaStart, double betaEnd)
    {
        var roots = Linear(trainingSteps, Math.Sqrt(betaStart), Math.Sqrt(betaEnd));
        return new NoiseSchedule([.. roots._betas.Select(b => b * b)]);
    }

    /// <summary>The β given one per training step (diffusers' <c>trained_betas</c>).</summary>
    public static NoiseSchedule Trained(IReadOnlyList<double> betas)
    {
        ArgumentNullException.ThrowIfNull(betas);
        Validate(betas.Count);
        if (betas.Any(b => !(b > 0 && b < 1)))
        {
            throw new ArgumentException("Trained β must each lie in (0, 1).", nameof(betas));
        }

        return new NoiseSchedule([.. betas]);
    }

    /// <summary>
    /// The cosine schedule of Nichol &amp; Dhariwal (2021): ᾱ(t) ∝ cos²(((t/T) + s) / (1 + s) · π/2), β clipped at 0.999
    /// (diffusers' "squaredcos_cap_v2").
    /// </summary>
    public static NoiseSchedule Cosine(int trainingSteps, double offset = 0.008)
    {
        Validate(trainingSteps);
        double F(double t) => Math.Pow(Math.Cos(((t / trainingSteps) + offset) / (1 + offset) * Math.PI / 2), 2);
        var betas = new double[trainingSteps];
        for (var t = 0; t < trainingSteps; t++)
        {
            betas[t] = Math.Min(1 - (F(t + 1) / F(t)), 0.999);
        }

        return new NoiseSchedule(betas);
    }

    /// <summary>ᾱ_t = Π_{s ≤ t} (1 − β_s) for a training step t in 0 … T − 1.</summary>
    public double AlphaBar(int t) => _alphaBars[t];

    /// <summary>The N sampling steps for this schedule.</summary>
    public StepSchedule Steps(int steps) => new(this, steps);

    private static void Validate(int trainingSteps) =>
        ArgumentOutOfRangeException.ThrowIfLessThan(trainingSteps, 1);
}
