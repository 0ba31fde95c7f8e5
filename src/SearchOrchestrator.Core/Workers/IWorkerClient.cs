using SearchOrchestrator.Links;
using SearchOrchestrator.Processes;
using SearchOrchestrator.Randomness;
using SearchOrchestrator.Tensors;

namespace SearchOrchestrator.Workers;

/// <summary>
/// The worker protocol as Core sees it: one remote worker's operations, each returning what it moved over the
/// link. The gRPC client implements it; Core's placement, batching and replay are written against it.
/// Implementations must throw <see cref="WorkerUnavailableException"/> when the worker cannot be reached, fails or
/// misses its deadline, and <see cref="WorkerDataException"/> when it answers with data that cannot be right.
/// </summary>
internal interface IWorkerClient : IAsyncDisposable
{
    /// <summary>The worker's endpoint; also its name in the pool and its link's name.</summary>
    string Endpoint { get; }

    /// <summary>What the worker hosts.</summary>
    Task<WorkerCall<WorkerDescription>> DescribeAsync(CancellationToken cancellationToken = default);

    /// <summary>
    /// Moves every item one step (stateless); writes each item's new state and x0-prediction. The value is what the
    /// worker's own text encoder did for the call (a pipeline's prompts).
    /// </summary>
    Task<WorkerCall<PromptEncoding>> StepAsync(TrajectorySettings settings, IReadOnlyList<RemoteStep> items, CancellationToken cancellationToken = default);

    /// <summary>Stores node states on the worker.</summary>
    Task<WorkerCall<bool>> PutAsync(TrajectorySettings settings, IReadOnlyList<ResidentState> nodes, CancellationToken cancellationToken = default);

    /// <summary>Advances resident nodes to <paramref name="toStep"/>; the value is the worker's batches the steps ran in.</summary>
    Task<WorkerCall<RemotePasses>> AdvanceAsync(IReadOnlyList<ulong> handles, int toStep, CancellationToken cancellationToken = default);

    /// <summary>Creates resident children of a resident parent.</summary>
    Task<WorkerCall<bool>> ForkAsync(ulong parent, IReadOnlyList<ResidentChild> children, CancellationToken cancellationToken = default);

    /// <summary>The states and x0-predictions of resident nodes, in <paramref name="handles"/> order.</summary>
    Task<WorkerCall<IReadOnlyList<ResidentState>>> FetchAsync(IReadOnlyList<ulong> handles, CancellationToken cancellationToken = default);

    /// <summary>Forgets resident nodes.</summary>
    Task<WorkerCall<bool>> ReleaseAsync(IReadOnlyList<ulong> handles, CancellationToken cancellationToken = default);

    /// <summary>
    /// Scores samples (with their decoded <paramref name="texts"/>, a text model's, and the model <paramref name="times"/>
    /// they were predicted at, for a noise-aware verifier) with a verifier the worker hosts.
    /// </summary>
    Task<WorkerCall<float[]>> VerifyAsync(string verifier, string condition, SampleShape shape, IReadOnlyList<float[]> samples, IReadOnlyList<string>? texts = null, IReadOnlyList<float>? times = null, CancellationToken cancellationToken = default);

    /// <summary>Scores resident nodes' x0-predictions with a verifier the worker hosts.</summary>
    Task<WorkerCall<float[]>> VerifyResidentAsync(string verifier, string condition, IReadOnlyList<ulong> handles, CancellationToken cancellationToken = default);

    /// <summary>Decodes latents with the decoder of the pipeline <paramref name="model"/> the worker hosts: one image per latent.</summary>
    Task<WorkerCall<IReadOnlyList<float[]>>> DecodeAsync(string model, IReadOnlyList<float[]> latents, CancellationToken cancellationToken = default);

    /// <summary>Decodes resident nodes' x0-predictions where they are, with the decoder of the pipeline <paramref name="model"/>: one image per handle.</summary>
    Task<WorkerCall<IReadOnlyList<float[]>>> DecodeResidentAsync(string model, IReadOnlyList<ulong> handles, CancellationToken cancellationToken = default);

    /// <summary>Sends <paramref name="sendBytes"/> and receives <paramref name="receiveBytes"/>: one link sample.</summary>
    Task<WorkerCall<bool>> ProbeAsync(int sendBytes, int receiveBytes, CancellationToken cancellationToken = default);

    /// <summary>True when the worker's health service says SERVING.</summary>
    Task<bool> IsHealthyAsync(CancellationToken cancellationToken = default);
}

/// <summary>
/// The forward passes a worker ran for one call's steps: each of its batches once (other searches' steps may share
/// them), and the time the steps waited in the worker's queue, summed over steps.
/// </summary>
public sealed record RemotePasses(IReadOnlyList<RemotePass> Passes, TimeSpan Queued)
{
    /// <summary>What the worker's own text encoder did for the call (a pipeline's prompts, encoded once per node group).</summary>
    public PromptEncoding Encoding { get; init; }

    /// <summary>No passes.</summary>
    public static RemotePasses None { get; } = new([], TimeSpan.Zero);
}

/// <summary>
/// A worker's text-encoder work for one call of a text-to-image pipeline: the prompts it encoded (the first time it saw
/// them) and the prompts it found already encoded in its own prompt cache. The orchestrator adds both to the search's
/// cost account beside its own.
/// </summary>
public readonly record struct PromptEncoding(int Calls, int Hits);

/// <summary>One batch on a worker: its number there (unique per worker process), its rows and its pass's time.</summary>
public readonly record struct RemotePass(long BatchId, int Rows, TimeSpan Compute);

/// <summary>A worker call's result, the traffic it caused, and the time the worker spent on it.</summary>
internal sealed record WorkerCall<T>(T Value, Transfer Transfer, TimeSpan ServerTime);

/// <summary>What a worker hosts and runs on.</summary>
internal sealed record WorkerDescription
{
    /// <summary>The worker protocol version.</summary>
    public required int ProtocolVersion { get; init; }

    /// <summary>Models by name: kind and SHA-256 (empty for C# verifiers).</summary>
    public required IReadOnlyList<HostedModel> Models { get; init; }

    /// <summary>The device, e.g. <c>cpu</c>.</summary>
    public required string Device { get; init; }

    /// <summary>The execution provider in use.</summary>
    public required string ExecutionProvider { get; init; }

    /// <summary>Intra-op threads per session.</summary>
    public required int Threads { get; init; }

    /// <summary>Rows per forward pass.</summary>
    public required int MaxBatchSize { get; init; }

    /// <summary>Resident bytes the worker accepts.</summary>
    public required long MaxResidentBytes { get; init; }

    /// <summary>For each hosted pipeline, the stages the worker serves (<see cref="StageNames"/>); a pipeline not listed serves every stage.</summary>
    public IReadOnlyDictionary<string, IReadOnlyList<string>> PipelineStages { get; init; } = new Dictionary<string, IReadOnlyList<string>>();
}

/// <summary>A model a worker hosts.</summary>
internal sealed record HostedModel(string Name, string Kind, string Sha256);

/// <summary>
/// What every node of one search shares on a worker: the model, N, the sampler as plain data (rebuilt there with
/// <see cref="Processes.DiffusionProcess.CreateSampler(Processes.SamplerSettings, Processes.TokenPrompt?)"/>), the prompt
/// of a masked model (its clamped positions), the guidance scale and the condition id.
/// </summary>
public sealed record TrajectorySettings(string Model, int Steps, Processes.SamplerSettings Sampler, Processes.TokenPrompt? Prompt, double Guidance, long ConditionId)
{
    /// <summary>
    /// A text-to-image pipeline's prompt (null for other models): the worker encodes it (and <see cref="NegativePrompt"/>)
    /// with its own text encoder and steps on those embeddings; <see cref="ConditionId"/> is this process's and means nothing there.
    /// </summary>
    public string? TextPrompt { get; init; }

    /// <summary>A pipeline's negative prompt, the unconditional branch of guidance (null: the empty prompt).</summary>
    public string? NegativePrompt { get; init; }

    /// <inheritdoc />
    public bool Equals(TrajectorySettings? other) =>
        other is not null && Model == other.Model && Steps == other.Steps && Sampler.Equals(other.Sampler) && Guidance.Equals(other.Guidance)
        && ConditionId == other.ConditionId && PromptEquals(Prompt, other.Prompt)
        && TextPrompt == other.TextPrompt && NegativePrompt == other.NegativePrompt;

    /// <inheritdoc />
    public override int GetHashCode() => HashCode.Combine(Model, Steps, Sampler, Guidance, ConditionId, Prompt?.Tokens.Count, TextPrompt, NegativePrompt);

    private static bool PromptEquals(Processes.TokenPrompt? a, Processes.TokenPrompt? b) =>
        ReferenceEquals(a, b) || (a is not null && b is not null && a.Tokens.SequenceEqual(b.Tokens)
            && (a.Clamped is null ? b.Clamped is null : b.Clamped is not null && a.Clamped.SequenceEqual(b.Clamped)));
}

/// <summary>One node's step to run remotely: its key, step index, and the buffers the result is written to.</summary>
internal sealed record RemoteStep(RngKey Key, int StepIndex, float[] State, float[] Prediction);

/// <summary>A resident node's state as it crosses a link (<see cref="FromPrior"/>: the worker draws it from the key).</summary>
public sealed record ResidentState(ulong Handle, RngKey Key, int StepIndex, float[]? State, float[]? Prediction, bool FromPrior = false);

/// <summary>A resident child to create: its handle, key, and how it starts.</summary>
public sealed record ResidentChild(ulong Handle, RngKey Key, ChildStart Start, int ToStep);

/// <summary>A worker could not be reached, failed, or missed its deadline; what it held must be recomputed elsewhere.</summary>
public sealed class WorkerUnavailableException(string worker, string message, Exception? inner = null)
    : Exception($"worker {worker}: {message}", inner)
{
    /// <summary>The worker's endpoint.</summary>
    public string Worker { get; } = worker;
}

/// <summary>A worker answered with data that cannot be right (wrong size, NaN, unknown handle); its work is rerun elsewhere.</summary>
public sealed class WorkerDataException(string worker, string message)
    : Exception($"worker {worker} returned bad data: {message}")
{
    /// <summary>The worker's endpoint.</summary>
    public string Worker { get; } = worker;
}
