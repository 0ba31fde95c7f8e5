using SearchOrchestrator.Tensors;

namespace SearchOrchestrator.Verifiers;

/// <summary>
/// A batch of x0-predictions to score: <see cref="Count"/> samples of <see cref="Shape"/> stacked along axis 0,
/// each with the condition label it was generated for.
/// </summary>
public sealed record VerifierBatch(SampleShape Shape, ReadOnlyMemory<float> Samples, IReadOnlyList<string> Conditions)
{
    /// <summary>
    /// Each sample's model time t: the time its node's x0-prediction was made at (the schedule's time of the node's
    /// last step). Empty when the caller does not know it (a worker relaying samples); otherwise <see cref="Count"/> values.
    /// </summary>
    public ReadOnlyMemory<float> Times { get; init; }

    /// <summary>
    /// Each sample's decoded text when the samples are a text model's tokens (the answer the prompt left masked, special
    /// tokens left out), so a verifier can score text; null for other models.
    /// </summary>
    public IReadOnlyList<string>? Texts { get; init; }

    /// <summary>The number of samples.</summary>
    public int Count => Conditions.Count;

    /// <summary>Sample <paramref name="index"/>'s values.</summary>
    public ReadOnlySpan<float> Sample(int index) => Samples.Span.Slice(index * Shape.ElementCount, Shape.ElementCount);
}

/// <summary>
/// Scores x0-predictions given their condition; higher is better. One contract for ONNX verifiers, C# plug-ins
/// and remote verifiers. Implementations must be safe to call concurrently.
/// </summary>
public interface IVerifier
{
    /// <summary>The name requests use to choose this verifier.</summary>
    string Name { get; }

    /// <summary>
    /// The one sample shape this verifier scores, or null when it takes what it is given (and checks it). In a latent
    /// pipeline a verifier whose shape is the denoiser's latent shape scores latents; every other verifier scores the
    /// decoded images, so it declares here which of the two it wants.
    /// </summary>
    SampleShape? SampleShape => null;

    /// <summary>What kind of verifier it is (<see cref="VerifierKinds"/>); a C# class leaves the default, <c>code</c>.</summary>
    string Kind => VerifierKinds.Code;

    /// <summary>One score per sample, in batch order.</summary>
    Task<float[]> ScoreAsync(VerifierBatch batch, CancellationToken cancellationToken = default);
}
