using SearchOrchestrator.Links;

namespace SearchOrchestrator.Workers;

/// <summary>
/// The capability of a backend that keeps node states between calls (<see cref="IStepBackend.ResidentStates"/>): states
/// are put once, advanced, forked, scored and fetched by handle, so a step ships ids rather than tensors. Failures
/// surface as <see cref="WorkerUnavailableException"/> or <see cref="WorkerDataException"/>; the states are then
/// recomputed elsewhere by replay.
/// </summary>
public interface IResidentStates
{
    /// <summary>True when the backend hosts <paramref name="model"/>, e.g. a verifier it can score resident nodes with.</summary>
    bool Hosts(string model);

    /// <summary>Stores node states.</summary>
    Task<Transfer> PutAsync(TrajectorySettings settings, IReadOnlyList<ResidentState> nodes, CancellationToken cancellationToken = default);

    /// <summary>
    /// Advances resident nodes to <paramref name="toStep"/> (<paramref name="steps"/> steps of <paramref name="rows"/>
    /// rows at most); returns the traffic and the backend's passes for them.
    /// </summary>
    Task<(Transfer Transfer, RemotePasses Passes)> AdvanceAsync(IReadOnlyList<ulong> handles, int toStep, int steps, int rows, CancellationToken cancellationToken = default);

    /// <summary>Creates resident children of a resident parent.</summary>
    Task<Transfer> ForkAsync(ulong parent, IReadOnlyList<ResidentChild> children, CancellationToken cancellationToken = default);

    /// <summary>The states and x0-predictions of resident nodes, in <paramref name="handles"/> order.</summary>
    Task<(IReadOnlyList<ResidentState> Nodes, Transfer Transfer)> FetchAsync(IReadOnlyList<ulong> handles, CancellationToken cancellationToken = default);

    /// <summary>Forgets resident nodes, best effort: a backend that missed the release expires them when idle.</summary>
    Task ReleaseAsync(IReadOnlyList<ulong> handles, CancellationToken cancellationToken = default);

    /// <summary>
    /// Decodes resident nodes' x0-predictions where they are, with the decoder of pipeline <paramref name="model"/> (a
    /// backend that serves its decoder stage): only handles go there, only images come back.
    /// </summary>
    Task<(IReadOnlyList<float[]> Images, Transfer Transfer)> DecodeResidentAsync(string model, IReadOnlyList<ulong> handles, CancellationToken cancellationToken = default);

    /// <summary>Scores resident nodes' x0-predictions with a verifier the backend hosts.</summary>
    Task<(float[] Scores, Transfer Transfer)> VerifyResidentAsync(string verifier, string condition, IReadOnlyList<ulong> handles, CancellationToken cancellationToken = default);
}
