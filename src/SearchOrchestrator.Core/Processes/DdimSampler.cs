namespace SearchOrchestrator.Processes;

/// <summary>
/// DDIM (Song et al., 2021, "Denoising Diffusion Implicit Models") with stochasticity η:
/// x_to = √ᾱ_to·x̂0 + √(1 − ᾱ_to − σ²)·ε̂ + σ·z, with σ = η·√((1−ᾱ_to)/(1−ᾱ_from))·√(1 − ᾱ_from/ᾱ_to).
/// η = 0 is deterministic; η = 1 is ancestral sampling with the DDPM posterior variance.
/// </summary>
internal sealed class DdimSampler
{
    /// <summary>Creates the sampler; η must lie in [0, 1].</summary>
    public DdimSampler(double eta)
    {
        if (!(eta >= 0 && eta <= 1))
        {
            throw new InvalidRequestException("eta", $"eta must be between 0 (deterministic DDIM) and 1 (ancestral), got {eta}.");
        }

        Eta = eta;
    }

    /// <summary>η: 0 deterministic, 1 ancestral.</summary>
    public double Eta { get; }

    /// <summary>True when a step draws fresh noise, so children forked from one node can differ.</summary>
    public bool IsStochastic => Eta > 0;

    /// <summary>σ for a move from ᾱ_from to the cleaner ᾱ_to.</summary>
    public double Sigma(double alphaBarFrom, double alphaBarTo)
    {
        if (Eta == 0 || alphaBarFrom >= 1)
        {
            return 0;
        }

        return Eta * Math.Sqrt((1 - alphaBarTo) / (1 - alphaBarFrom)) * Math.Sqrt(Math.Max(0, 1 - (alphaBarFrom / alphaBarTo)));
    }

    /// <summary>
    /// One step from ᾱ_from to the cleaner ᾱ_to, given ε̂ and x̂0 at ᾱ_from. <paramref name="noise"/> is read
    /// only when the step is stochastic (σ &gt; 0) and may then be empty otherwise.
    /// </summary>
    public void Step(ReadOnlySpan<float> epsilon, ReadOnlySpan<float> sample, double alphaBarFrom, double alphaBarTo, ReadOnlySpan<float> noise, Span<float> destination)
    {
        var sigma = Sigma(alphaBarFrom, alphaBarTo);
        if (sigma > 0 && noise.Length < destination.Length)
        {
            throw new ArgumentException("A stochastic step needs one noise value per element.", nameof(noise));
        }

        var a = Math.Sqrt(alphaBarTo);
        var direction = Math.Sqrt(Math.Max(0, 1 - alphaBarTo - (sigma * sigma)));
        for (var k = 0; k < destination.Length; k++)
        {
            var value = (a * sample[k]) + (direction * epsilon[k]);
            if (sigma > 0)
            {
                value += sigma * noise[k];
            }

            destination[k] = (float)value;
        }
    }
}
