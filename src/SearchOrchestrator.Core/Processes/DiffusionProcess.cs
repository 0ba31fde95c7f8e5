using SearchOrchestrator.Tensors;

namespace SearchOrchestrator.Processes;

/// <summary>
/// How noise is added and removed for one denoiser: <c>gaussian</c> (<see cref="GaussianProcess"/>) or <c>masked</c>
/// (<see cref="MaskedProcess"/>). It chooses the N step levels, sizes states and denoiser outputs, and builds the
/// per-request <see cref="ISampler"/> that the tree and the batchers call.
/// </summary>
public abstract class DiffusionProcess
{
    private protected DiffusionProcess()
    {
    }

    /// <summary>The process's name in manifests and the API: <c>gaussian</c> or <c>masked</c>.</summary>
    public abstract string Name { get; }

    /// <summary>The N sampling steps; a step count the process cannot take is the caller's mistake.</summary>
    /// <exception cref="InvalidRequestException">The step count is out of range.</exception>
    public abstract StepSchedule Steps(int steps);

    /// <summary>How many floats one node's state (and x0-prediction) holds for samples of <paramref name="shape"/>; the sample is their prefix.</summary>
    public virtual int StateElements(SampleShape shape)
    {
        ArgumentNullException.ThrowIfNull(shape);
        return shape.ElementCount;
    }

    /// <summary>How many floats the denoiser outputs per sample of <paramref name="shape"/>.</summary>
    public virtual int OutputElements(SampleShape shape)
    {
        ArgumentNullException.ThrowIfNull(shape);
        return shape.ElementCount;
    }

    /// <summary>The settings a request gets when it names no sampler: gaussian DDIM with its η; masked, the process defaults.</summary>
    /// <exception cref="InvalidRequestException">η does not apply to this process.</exception>
    public abstract SamplerSettings DefaultSampler(double eta);

    /// <summary>
    /// Rebuilds a sampler from plain settings (on the orchestrator, or on a remote worker with no prompt). The prompt,
    /// for masked models, fixes the root state and the clamped positions renoise never masks.
    /// </summary>
    /// <exception cref="InvalidRequestException">A setting or the prompt is invalid for this process.</exception>
    public abstract ISampler CreateSampler(SamplerSettings settings, TokenPrompt? prompt = null);

    /// <summary>
    /// The prompt a condition label stands for, when the process reads its condition as a prompt (a masked model with a
    /// one-character-per-token vocabulary reads a puzzle); null otherwise.
    /// </summary>
    /// <exception cref="InvalidRequestException">The condition is not a valid prompt.</exception>
    public virtual TokenPrompt? PromptFromCondition(string condition) => null;

    /// <summary>The request's sampler: its explicit settings (or the default for η), and its prompt (or the one its condition stands for).</summary>
    /// <exception cref="InvalidRequestException">A setting or the prompt is invalid, or both settings and a non-zero η were given.</exception>
    public ISampler CreateSampler(SamplerSettings? settings, double eta, TokenPrompt? prompt, string condition)
    {
        // A sampler of another process is the error to name first, even when η is set too.
        if (settings is not null && DefaultSampler(0).Name is var own && settings.Name != own)
        {
            throw new InvalidRequestException("sampler", $"the {Name} process samples with '{own}', not '{settings.Name}'.");
        }

        if (settings is not null && eta != 0 && settings.Name != SamplerNames.Ddim)
        {
            throw new InvalidRequestException("eta", $"eta applies to the ddim sampler; this request names the {CallerInput.Quote(settings.Name)} sampler.");
        }

        return CreateSampler(settings ?? DefaultSampler(eta), prompt ?? PromptFromCondition(condition));
    }
}
