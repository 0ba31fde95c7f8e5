namespace SearchOrchestrator.Processes;

/// <summary>How N sampling timesteps are picked from T training steps (diffusers' <c>timestep_spacing</c>).</summary>
internal enum TimestepSpacingKind
{
    /// <summary>t_i = round(T·(N − i)/N) − 1: starts at the noisiest trained level (Lin et al., 2024). Our manifests' spacing.</summary>
    Trailing,

    /// <summary>t_i = (N − 1 − i)·⌊T/N⌋ + steps_offset: Stable Diffusion 1.x/2.x's DDIM and PNDM configs.</summary>
    Leading,

    /// <summary>t_i = round((T − 1)·(N − 1 − i)/(N − 1)): evenly spaced over the whole range, both ends included.</summary>
    Linspace,
}

/// <summary>
/// The sampling timesteps and the level of the last step, as a diffusers scheduler config sets them
/// (<c>timestep_spacing</c>, <c>steps_offset</c>, <c>set_alpha_to_one</c>). The default, <see cref="Trailing"/> with a clean
/// last level, is what our own manifests' models are sampled with.
/// </summary>
internal sealed record TimestepSpacing
{
    /// <summary>Trailing spacing, no offset, ᾱ = 1 after the last step.</summary>
    public static TimestepSpacing Trailing { get; } = new();

    /// <summary>How the timesteps are spaced.</summary>
    public TimestepSpacingKind Kind { get; init; } = TimestepSpacingKind.Trailing;

    /// <summary>Added to every <see cref="TimestepSpacingKind.Leading"/> timestep (diffusers adds it only there).</summary>
    public int StepsOffset { get; init; }

    /// <summary>
    /// True: the step after the last lands on ᾱ = 1, the clean sample. False (diffusers' <c>set_alpha_to_one: false</c>):
    /// it lands on ᾱ of training step 0, as Stable Diffusion's DDIM config asks.
    /// </summary>
    public bool FinalAlphaIsOne { get; init; } = true;

    /// <summary>The training timestep of step index <paramref name="stepIndex"/> (0 ≤ i &lt; N) of N steps over T training steps.</summary>
    /// <exception cref="InvalidRequestException">With this spacing and offset, N steps reach past the last training step.</exception>
    public int Timestep(int trainingSteps, int steps, int stepIndex)
    {
        var t = Kind switch
        {
            TimestepSpacingKind.Leading => ((steps - 1 - stepIndex) * (trainingSteps / steps)) + StepsOffset,
            TimestepSpacingKind.Linspace => steps == 1 ? 0 : (int)Math.Round((double)(trainingSteps - 1) * (steps - 1 - stepIndex) / (steps - 1)),
            _ => (int)Math.Round((double)trainingSteps * (steps - stepIndex) / steps) - 1,
        };
        if (t >= trainingSteps)
        {
            throw new InvalidRequestException("steps", $"{steps} steps with {Kind.ToString().ToLowerInvariant()} spacing and steps_offset {StepsOffset} reach timestep {t}, past the model's {trainingSteps} training steps; use fewer steps.");
        }

        return t;
    }
}
