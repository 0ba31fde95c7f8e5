using SearchOrchestrator.Processes;
using SearchOrchestrator.Tensors;

namespace SearchOrchestrator.Denoising;

/// <summary>What Core needs to know to drive a denoiser: its sample shape, process and conditions.</summary>
public sealed record DenoiserDescription
{
    /// <summary>The model's name in the repository.</summary>
    public required string Name { get; init; }

    /// <summary>The shape of one sample (no batch axis).</summary>
    public required SampleShape SampleShape { get; init; }

    /// <summary>The process the model was trained on: <see cref="GaussianProcess"/> or <see cref="MaskedProcess"/>.</summary>
    public required DiffusionProcess Process { get; init; }

    /// <summary>The condition labels and ids, and the null id for guidance.</summary>
    public required ConditionVocabulary Conditions { get; init; }

    /// <summary>Floats in one node's state and x0-prediction (the sample is their prefix; masked models add confidences).</summary>
    public int StateElements => Process.StateElements(SampleShape);

    /// <summary>Floats the denoiser outputs per sample: the sample's size, or positions × vocabulary for a masked model's logits.</summary>
    public int OutputElements => Process.OutputElements(SampleShape);
}

/// <summary>
/// One forward pass over a batch: <see cref="Count"/> samples stacked along axis 0, each with its own
/// model time (samples at different steps batch together) and its own condition id.
/// </summary>
public sealed record DenoiserBatch(int Count, ReadOnlyMemory<float> Samples, ReadOnlyMemory<float> Times, ReadOnlyMemory<long> Conditions);

/// <summary>
/// A denoiser backend: predicts, for every sample of a batch, what the model's prediction type says
/// (ε, x0 or v). Implementations must be safe to call concurrently.
/// </summary>
public interface IDenoiser
{
    /// <summary>The model this backend runs.</summary>
    DenoiserDescription Description { get; }

    /// <summary>
    /// Runs one forward pass over <c>batch.Count × SampleShape.ElementCount</c> sample values (token ids as floats for
    /// masked models) and writes <c>batch.Count × Description.OutputElements</c> floats to
    /// <paramref name="output"/>. Cancellation may stop a pass that is already running.
    /// </summary>
    Task PredictAsync(DenoiserBatch batch, Memory<float> output, CancellationToken cancellationToken = default);
}

/// <summary>
/// A denoiser backend with several instances of its model, each able to run a forward pass while the others run
/// theirs (each its own session, as Triton's instance groups are): the batcher runs one pump per instance, all fed
/// from one queue. <see cref="IDenoiser.PredictAsync"/> runs on the first instance.
/// </summary>
public interface IMultiInstanceDenoiser : IDenoiser
{
    /// <summary>The instances, at least one, all describing the same model.</summary>
    IReadOnlyList<IDenoiser> Instances { get; }

    /// <summary>
    /// A session of the model with more intra-op threads than each instance has (on the CPU, the machine's cores), for a
    /// pass that runs alone: no instance is running a pass and every producer that could add work is in it, as a lone
    /// search's step is. Its outputs must equal the instances' bit for bit. Null (the default) when there is none.
    /// </summary>
    IDenoiser? LonePass => null;
}
