using SearchOrchestrator.Processes;
using SearchOrchestrator.Scheduling;
using SearchOrchestrator.Workers;

namespace SearchOrchestrator.Search;

/// <summary>A clean sample reached from a node for scoring only, and the model time its last step predicted it at.</summary>
/// <param name="Sample">The preview's x0-prediction after its last step (a process's state-sized buffer).</param>
/// <param name="Time">The model time of that last step, which a noise-aware verifier takes.</param>
internal sealed record Preview(float[] Sample, float Time)
{
    /// <summary>A pipeline's decoded image of <see cref="Sample"/>, for its pixel verifiers.</summary>
    public float[]? Pixels { get; init; }
}

/// <summary>
/// Lookahead scoring (DSearch, 2025): a node's preview is j deterministic steps from its state to a clean sample, on
/// step indices spread evenly between the node's and N — DDIM with η = 0 for the gaussian process, a greedy fill-in
/// (most likely tokens, most confident first) for the masked one. The steps go through the denoiser's batcher like any
/// step (other searches' rows share the batch) on a copy of the state, so the node never changes; each step is one
/// preview NFE. A preview is a pure function of the node's state, so it does not depend on batching or backend.
/// </summary>
/// <param name="denoiser">This process's batcher of the search's denoiser.</param>
/// <param name="steps">The search's step loop (schedule, condition and guidance).</param>
/// <param name="sampler">The deterministic sampler of the search's process.</param>
internal sealed class NodePreviews(DenoiserBatcher denoiser, StepLoop steps, ISampler sampler)
{
    /// <summary>The deterministic variant of <paramref name="settings"/>: η = 0 for DDIM; greedy tokens, most confident first, for the masked sampler.</summary>
    public static SamplerSettings Deterministic(SamplerSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        return settings.Name == SamplerNames.Ddim
            ? settings.With(SamplerParameters.Eta, 0)
            : settings.With(SamplerParameters.Temperature, 0).With(SamplerParameters.Policy, UnmaskingPolicyNames.Confidence);
    }

    /// <summary>The model time a node's raw x0-prediction was made at (its last step's); null for a root.</summary>
    public float? PredictionTime(Node node) => node.StepIndex > 0 ? (float)steps.Schedule.TimestepAt(node.StepIndex - 1) : null;

    /// <summary>The model time of a node's state (the time its next step is taken at); null for a finished, clean one.</summary>
    public float? StateTime(Node node) => node.StepIndex < steps.Schedule.Count ? (float)steps.Schedule.TimestepAt(node.StepIndex) : null;

    /// <summary>
    /// The previews of <paramref name="nodes"/> (held here, each short of the last step) with <paramref name="previewSteps"/>
    /// steps each (fewer when fewer are left), counting every step in <paramref name="ledger"/> as preview NFE (the budget
    /// is already reserved).
    /// </summary>
    public Task<Preview[]> RunAsync(IReadOnlyList<Node> nodes, int previewSteps, TreeLedger ledger, CancellationToken cancellationToken) =>
        StepLoop.RunAsync(nodes, denoiser, node => PreviewAsync(node, previewSteps, ledger, cancellationToken));

    private async Task<Preview> PreviewAsync(Node node, int previewSteps, TreeLedger ledger, CancellationToken cancellationToken)
    {
        var schedule = steps.Schedule;
        var from = node.StepIndex;
        var count = PlanContext.PreviewStepCount(previewSteps, from, schedule.Count);
        var state = (float[])node.MutableState.Clone();
        var prediction = new float[state.Length];
        var at = from;
        var last = from;
        for (var m = 1; m <= count; m++)
        {
            var to = from + (int)Math.Round((double)m * (schedule.Count - from) / count);
            var request = steps.Request(node.Key, at, state, prediction) with { AlphaBarTo = schedule.AlphaBarAt(to), Sampler = sampler };
            var timing = await denoiser.StepAsync(request, cancellationToken).ConfigureAwait(false);
            ledger.AddPreviewNfe(1);
            ledger.RecordStep(null, new StepOutcome(timing, default));
            (last, at) = (at, to);
        }

        return new Preview(prediction, (float)schedule.TimestepAt(last));
    }
}
