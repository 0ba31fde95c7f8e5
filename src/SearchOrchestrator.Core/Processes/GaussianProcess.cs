namespace SearchOrchestrator.Processes;

/// <summary>
/// The <c>gaussian</c> process: x_t = √ᾱ_t·x0 + √(1−ᾱ_t)·ε. Converts a denoiser's output into the
/// (ε̂, x̂0) pair samplers need, and moves samples back to noisier levels with the forward kernel.
/// </summary>
internal sealed class GaussianProcess : DiffusionProcess
{
    /// <summary>Creates the process for a model trained on <paramref name="schedule"/>.</summary>
    /// <param name="schedule">The training noise schedule.</param>
    /// <param name="prediction">What the model outputs.</param>
    /// <param name="sampleRange">The range of clean data; x̂0 is clipped to it when set.</param>
    /// <param name="spacing">How sampling timesteps are picked; null: <see cref="TimestepSpacing.Trailing"/>.</param>
    public GaussianProcess(NoiseSchedule schedule, PredictionType prediction, (float Min, float Max)? sampleRange = null, TimestepSpacing? spacing = null)
    {
        ArgumentNullException.ThrowIfNull(schedule);
        if (sampleRange is { } r && !(r.Min < r.Max))
        {
            throw new ArgumentException($"The sample range must have Min < Max, got [{r.Min}, {r.Max}].", nameof(sampleRange));
        }

        Schedule = schedule;
        Prediction = prediction;
        SampleRange = sampleRange;
        Spacing = spacing ?? TimestepSpacing.Trailing;
    }

    /// <summary>The training noise schedule.</summary>
    public NoiseSchedule Schedule { get; }

    /// <summary>What the model outputs.</summary>
    public PredictionType Prediction { get; }

    /// <summary>The range x̂0 is clipped to, or null for no clipping.</summary>
    public (float Min, float Max)? SampleRange { get; }

    /// <summary>How sampling timesteps are picked from the training schedule.</summary>
    public TimestepSpacing Spacing { get; }

    /// <inheritdoc />
    public override string Name => "gaussian";

    /// <inheritdoc />
    public override StepSchedule Steps(int steps) => new(Schedule, steps, Spacing);

    /// <inheritdoc />
    public override SamplerSettings DefaultSampler(double eta) => SamplerSettings.Ddim(eta);

    /// <inheritdoc />
    public override ISampler CreateSampler(SamplerSettings settings, TokenPrompt? prompt = null)
    {
        ArgumentNullException.ThrowIfNull(settings);
        if (prompt is not null)
        {
            throw new InvalidRequestException("tokens", "token prompts and clamped positions apply to masked models; this model's process is gaussian.");
        }

        if (settings.Name != SamplerNames.Ddim)
        {
            throw new InvalidRequestException("sampler", $"the gaussian process samples with '{SamplerNames.Ddim}', not {CallerInput.Quote(settings.Name)}.");
        }

        var unknown = settings.Numbers.Keys.Where(k => k != SamplerParameters.Eta).Concat(settings.Texts.Keys).ToList();
        if (unknown.Count > 0)
        {
            throw new InvalidRequestException("sampler", $"the ddim sampler takes only '{SamplerParameters.Eta}'; unknown: {CallerInput.QuoteList(unknown)}.");
        }

        return new GaussianSampler(this, settings, new DdimSampler(settings.Number(SamplerParameters.Eta, 0)));
    }

    /// <summary>
    /// Turns a model output at noise level <paramref name="alphaBar"/> into ε̂ and x̂0. When a sample range
    /// is set, x̂0 is clipped to it and ε̂ re-derived from the clipped x̂0, so the pair stays consistent with x_t.
    /// </summary>
    public void ToEpsilonAndSample(ReadOnlySpan<float> prediction, ReadOnlySpan<float> noisy, double alphaBar, Span<float> epsilon, Span<float> sample)
    {
        var n = noisy.Length;
        if (prediction.Length != n || epsilon.Length != n || sample.Length != n)
        {
            throw new ArgumentException("prediction, noisy, epsilon and sample must have the same length.");
        }

        var a = Math.Sqrt(alphaBar);
        var s = Math.Sqrt(1 - alphaBar);
        for (var k = 0; k < n; k++)
        {
            double x = noisy[k], p = prediction[k];
            var (eps, x0) = Prediction switch
            {
                PredictionType.Epsilon => (p, (x - (s * p)) / a),
                PredictionType.Sample => ((x - (a * p)) / s, p),
                PredictionType.V => ((s * x) + (a * p), (a * x) - (s * p)),
                _ => throw new InvalidOperationException($"Unknown prediction type {Prediction}."),
            };
            if (SampleRange is { } r && (x0 < r.Min || x0 > r.Max))
            {
                x0 = Math.Clamp(x0, r.Min, r.Max);
                eps = (x - (a * x0)) / s;
            }

            epsilon[k] = (float)eps;
            sample[k] = (float)x0;
        }
    }

    /// <summary>
    /// renoise: draws x_j ~ q(x_j | x_i) = N(√(ᾱ_j/ᾱ_i)·x_i, (1 − ᾱ_j/ᾱ_i)·I) for a noisier level ᾱ_j ≤ ᾱ_i.
    /// Applied to a sample of the marginal at ᾱ_i, the result is a sample of the marginal at ᾱ_j.
    /// </summary>
    public static void Renoise(ReadOnlySpan<float> current, double alphaBarFrom, double alphaBarTo, ReadOnlySpan<float> noise, Span<float> destination)
    {
        if (!(alphaBarTo <= alphaBarFrom) || alphaBarTo <= 0)
        {
            throw new ArgumentException($"renoise goes to a noisier level: need 0 < ᾱ_to <= ᾱ_from, got ᾱ_from = {alphaBarFrom}, ᾱ_to = {alphaBarTo}.");
        }

        var ratio = alphaBarTo / alphaBarFrom;
        var keep = Math.Sqrt(ratio);
        var add = Math.Sqrt(1 - ratio);
        for (var k = 0; k < destination.Length; k++)
        {
            destination[k] = (float)((keep * current[k]) + (add * noise[k]));
        }
    }
}
