using System.Collections.Concurrent;
using SearchOrchestrator.Denoising;
using SearchOrchestrator.Processes;
using SearchOrchestrator.Scheduling;
using SearchOrchestrator.Tensors;
using SearchOrchestrator.Workers;

namespace SearchOrchestrator.Search;

/// <summary>
/// The worker's side of the worker protocol: stateless steps and verifications through this process's batchers (so
/// remote work batches with everything else the worker runs), and the resident node states orchestrators keep here,
/// bounded in bytes overall and per session (one orchestrator's run), and forgotten when their session has been idle for
/// long (<see cref="ExpireIdle"/>): an orchestrator that died without releasing its nodes does not hold them forever.
/// Node states are made with <see cref="NodeStates"/>, exactly as the orchestrator's tree makes them. A text-to-image
/// pipeline's steps condition on prompt embeddings this worker encodes itself from the settings' prompts (through its
/// shared prompt cache, leased while a call or a resident node uses them), and its decoder decodes latents.
/// </summary>
internal sealed class WorkerRuntime
{
    private readonly IModelProvider _models;
    private readonly SearchEngine _engine;
    private readonly ConcurrentDictionary<(string Session, ulong Handle), ResidentNode> _nodes = new();
    private readonly ConcurrentDictionary<string, SessionUsage> _sessions = new(StringComparer.Ordinal);
    private readonly TimeProvider _time;
    private long _residentBytes;

    /// <summary>Creates the runtime over the models and batchers of this process.</summary>
    /// <param name="models">The models this process hosts.</param>
    /// <param name="engine">The engine whose batchers run the steps.</param>
    /// <param name="maxResidentBytes">The most bytes of resident state held at once.</param>
    /// <param name="maxResidentBytesPerSession">The most one session may hold; default <paramref name="maxResidentBytes"/>.</param>
    /// <param name="time">The clock session idleness is measured with.</param>
    public WorkerRuntime(IModelProvider models, SearchEngine engine, long maxResidentBytes, long? maxResidentBytesPerSession = null, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(models);
        ArgumentNullException.ThrowIfNull(engine);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxResidentBytes, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxResidentBytesPerSession ?? 1, 1);
        _models = models;
        _engine = engine;
        _time = time ?? TimeProvider.System;
        MaxResidentBytes = maxResidentBytes;
        MaxResidentBytesPerSession = Math.Min(maxResidentBytesPerSession ?? maxResidentBytes, maxResidentBytes);
    }

    /// <summary>The most bytes of resident state one session holds.</summary>
    public long MaxResidentBytesPerSession { get; }

    /// <summary>Sessions holding resident nodes now.</summary>
    public int Sessions => _sessions.Count;

    /// <summary>
    /// Forgets every node of each session that has not been used for <paramref name="idle"/> (put, advanced, forked,
    /// fetched, verified or released); returns how many nodes went. An orchestrator still using such a session finds
    /// its nodes missing and recomputes them by replay.
    /// </summary>
    public int ExpireIdle(TimeSpan idle)
    {
        var now = _time.GetTimestamp();
        var expired = 0;
        foreach (var (session, usage) in _sessions)
        {
            if (_time.GetElapsedTime(Interlocked.Read(ref usage.LastUsed), now) < idle)
            {
                continue;
            }

            var handles = _nodes.Keys.Where(k => k.Session == session).Select(k => k.Handle).ToList();
            Release(session, handles);
            expired += handles.Count;
            _sessions.TryRemove(new KeyValuePair<string, SessionUsage>(session, usage));
        }

        return expired;
    }

    /// <summary>The most bytes of resident state this worker holds.</summary>
    public long MaxResidentBytes { get; }

    /// <summary>Bytes of resident state held now.</summary>
    public long ResidentBytes => Interlocked.Read(ref _residentBytes);

    /// <summary>Resident nodes held now.</summary>
    public int ResidentNodes => _nodes.Count;

    /// <summary>
    /// Moves every item one step, in place, batched with this worker's other work; returns what this worker's text
    /// encoder did for the call (a pipeline's prompts; none for other models).
    /// </summary>
    public async Task<PromptEncoding> StepAsync(TrajectorySettings settings, IReadOnlyList<RemoteStep> items, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(items);
        var trajectory = Resolve(settings);
        foreach (var item in items)
        {
            trajectory.CheckState(item.State, "state");
            if (item.StepIndex < 0 || item.StepIndex >= settings.Steps)
            {
                throw new InvalidRequestException("items.step_index", $"step index {item.StepIndex} is outside 0..{settings.Steps - 1}.");
            }
        }

        try
        {
            var encoding = await trajectory.EncodeAsync(cancellationToken).ConfigureAwait(false);
            // One step per item: every item is a producer of the batcher until its step is done.
            await StepLoop.RunAsync(items, trajectory.Batcher, item => trajectory.Steps.AdvanceAsync(item.Key, item.State, item.Prediction, item.StepIndex, item.StepIndex + 1, request => trajectory.Batcher.StepAsync(request, cancellationToken), (_, _) => { })).ConfigureAwait(false);
            return encoding;
        }
        finally
        {
            trajectory.Drop();
        }
    }

    /// <summary>Stores node states under <paramref name="session"/>.</summary>
    /// <exception cref="ResidentMemoryExhaustedException">The states would exceed <see cref="MaxResidentBytes"/>.</exception>
    public void Put(string session, TrajectorySettings settings, IReadOnlyList<ResidentState> nodes)
    {
        ArgumentNullException.ThrowIfNull(nodes);
        Touch(session);
        var trajectory = Resolve(settings);
        try
        {
            Put(session, trajectory, nodes);
        }
        finally
        {
            trajectory.Drop(); // the nodes put hold it now
        }
    }

    private void Put(string session, Trajectory trajectory, IReadOnlyList<ResidentState> nodes)
    {
        var settings = trajectory.Settings;
        var made = new List<ResidentNode>(nodes.Count);
        foreach (var node in nodes)
        {
            float[] state;
            if (node.FromPrior)
            {
                state = NodeStates.Prior(trajectory.Steps.Sampler, node.Key, trajectory.Elements);
            }
            else
            {
                state = node.State ?? throw new InvalidRequestException("items.state", $"node {node.Handle} has no state and is not from_prior.");
                trajectory.CheckState(state, "state");
            }

            if (node.Prediction is { Length: > 0 } prediction)
            {
                trajectory.CheckState(prediction, "prediction");
            }

            if (node.StepIndex < 0 || node.StepIndex > settings.Steps)
            {
                throw new InvalidRequestException("items.step_index", $"step index {node.StepIndex} is outside 0..{settings.Steps}.");
            }

            made.Add(new ResidentNode(node.Handle, trajectory, node.Key, node.StepIndex, state, node.Prediction is { Length: > 0 } p ? p : null));
        }

        foreach (var node in made)
        {
            Add(session, node);
        }
    }

    /// <summary>
    /// Advances resident nodes to <paramref name="toStep"/>; nodes already there do not move. Returns the batches the
    /// steps ran in (each once) and their queue time, for the caller's cost account.
    /// </summary>
    public async Task<RemotePasses> AdvanceAsync(string session, IReadOnlyList<ulong> handles, int toStep, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(handles);
        Touch(session);
        var nodes = handles.Select(h => Get(session, h)).ToList();
        var encodings = await Task.WhenAll(nodes.Select(n => n.Trajectory).Distinct().Select(t => t.EncodeAsync(cancellationToken))).ConfigureAwait(false);
        foreach (var node in nodes)
        {
            if (toStep > node.Trajectory.Settings.Steps || toStep < node.StepIndex)
            {
                throw new InvalidRequestException("to_step", $"node {node.Handle} is at step {node.StepIndex} of {node.Trajectory.Settings.Steps}; it cannot be advanced to {toStep}.");
            }
        }

        // Every loop is a producer of the batcher from the start, so the first batch waits for all of them. (The nodes
        // of one call share their trajectory settings, hence the batcher: the orchestrator advances one search's nodes.)
        var timings = await StepLoop.RunAsync(nodes, nodes.Count == 0 ? null : nodes[0].Trajectory.Batcher, node => AdvanceOneAsync(node, toStep, cancellationToken)).ConfigureAwait(false);
        var steps = timings.SelectMany(t => t).ToList();
        return new RemotePasses(
            [.. steps.DistinctBy(t => t.BatchId).Select(t => new RemotePass(t.BatchId, t.BatchRows, t.Compute))],
            TimeSpan.FromTicks(steps.Sum(t => t.Queued.Ticks)))
        {
            Encoding = new PromptEncoding(encodings.Sum(e => e.Calls), encodings.Sum(e => e.Hits)),
        };
    }

    /// <summary>Creates resident children of a resident parent, as the orchestrator's tree would.</summary>
    public void Fork(string session, ulong parent, IReadOnlyList<ResidentChild> children)
    {
        ArgumentNullException.ThrowIfNull(children);
        var source = Get(session, parent);
        var made = new List<ResidentNode>(children.Count);
        lock (source)
        {
            foreach (var child in children)
            {
                if (child.Start is ChildStart.Renoise or ChildStart.ForkRenoise && (child.ToStep < 0 || child.ToStep >= source.StepIndex))
                {
                    throw new InvalidRequestException("children.to_step", $"renoise goes back to an earlier step than {source.StepIndex}, got {child.ToStep}.");
                }

                if (!Enum.IsDefined(child.Start))
                {
                    throw new InvalidRequestException("children.start", $"unknown child start {child.Start}.");
                }

                var steps = source.Trajectory.Steps;
                var state = NodeStates.Start(child.Start, steps.Sampler, steps.Schedule, source.State, source.StepIndex, child.ToStep, child.Key);
                var step = NodeStates.StartStep(child.Start, source.StepIndex, child.ToStep);
                made.Add(new ResidentNode(child.Handle, source.Trajectory, child.Key, step, state, (float[]?)source.Prediction?.Clone()));
            }
        }

        foreach (var node in made)
        {
            Add(session, node);
        }
    }

    /// <summary>The states and x0-predictions of resident nodes.</summary>
    public IReadOnlyList<ResidentState> Fetch(string session, IReadOnlyList<ulong> handles)
    {
        ArgumentNullException.ThrowIfNull(handles);
        Touch(session);
        return [.. handles.Select(h =>
        {
            var node = Get(session, h);
            lock (node)
            {
                return new ResidentState(node.Handle, node.Key, node.StepIndex, (float[])node.State.Clone(), (float[]?)node.Prediction?.Clone());
            }
        })];
    }

    /// <summary>Forgets resident nodes; unknown handles are ignored (releasing twice is harmless).</summary>
    public void Release(string session, IReadOnlyList<ulong> handles)
    {
        ArgumentNullException.ThrowIfNull(handles);
        var usage = Touch(session);
        foreach (var handle in handles)
        {
            if (_nodes.TryRemove((session, handle), out var node))
            {
                Interlocked.Add(ref _residentBytes, -node.Bytes);
                Interlocked.Add(ref usage.Bytes, -node.Bytes);
                node.Trajectory.Drop();
            }
        }
    }

    /// <summary>Scores samples with a verifier of this process; <paramref name="times"/>: each sample's model time, for a noise-aware verifier.</summary>
    public async Task<float[]> VerifyAsync(string verifier, string condition, SampleShape shape, IReadOnlyList<float[]> samples, IReadOnlyList<string>? texts = null, IReadOnlyList<float>? times = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(samples);
        var batcher = _engine.BatcherFor(_models.GetVerifier(verifier));
        foreach (var sample in samples)
        {
            if (sample.Length != shape.ElementCount)
            {
                throw new InvalidRequestException("samples", $"a sample has {sample.Length} values but shape {shape} has {shape.ElementCount}.");
            }
        }

        if (texts is not null && texts.Count != samples.Count)
        {
            throw new InvalidRequestException("texts", $"gives {texts.Count} texts for {samples.Count} samples; give one per sample or none.");
        }

        if (times is not null && times.Count != samples.Count)
        {
            throw new InvalidRequestException("times", $"gives {times.Count} times for {samples.Count} samples; give one per sample or none.");
        }

        var results = await Task.WhenAll(samples.Select((s, i) => batcher.ScoreAsync(shape, s, condition, times?[i], texts?[i], cancellationToken))).ConfigureAwait(false);
        return [.. results.Select(r => r.Score)];
    }

    /// <summary>Decodes latents with the decoder of pipeline <paramref name="model"/>, batched with this worker's other decodes.</summary>
    public async Task<IReadOnlyList<float[]>> DecodeAsync(string model, IReadOnlyList<float[]> latents, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(latents);
        var stages = _models.GetStages(model) ?? throw new InvalidRequestException("model", $"model {CallerInput.Quote(model)} is not a text-to-image pipeline this worker hosts; Decode takes a pipeline's latents.");
        var decoder = _engine.DecoderFor(stages);
        var elements = decoder.Description.LatentShape.ElementCount;
        for (var i = 0; i < latents.Count; i++)
        {
            if (latents[i].Length != elements)
            {
                throw new InvalidRequestException($"latents[{i}]", $"has {latents[i].Length} values but a latent of pipeline '{model}' has {elements} ({decoder.Description.LatentShape}).");
            }
        }

        var decoded = await Task.WhenAll(latents.Select(l => decoder.DecodeAsync(l, cancellationToken))).ConfigureAwait(false);
        return [.. decoded.Select(d => d.Image)];
    }

    /// <summary>
    /// Decodes resident nodes' x0-predictions (their states once complete) with the decoder of pipeline
    /// <paramref name="model"/>, batched with this worker's other decodes: the latents never leave this process.
    /// </summary>
    public Task<IReadOnlyList<float[]>> DecodeResidentAsync(string model, string session, IReadOnlyList<ulong> handles, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(handles);
        Touch(session);
        var latents = handles.Select(h => Get(session, h)).Select(n =>
        {
            if (n.Trajectory.Settings.Model != model)
            {
                throw new InvalidRequestException("handles", $"node {n.Handle} is a node of model '{n.Trajectory.Settings.Model}', not of pipeline '{model}'.");
            }

            lock (n)
            {
                var source = n.StepIndex == n.Trajectory.Settings.Steps ? n.State : n.Prediction
                    ?? throw new InvalidRequestException("handles", $"node {n.Handle} has no x0-prediction yet; advance it first.");
                return source[..n.Trajectory.Shape.ElementCount];
            }
        }).ToList();
        return DecodeAsync(model, latents, cancellationToken);
    }

    /// <summary>
    /// Scores resident nodes' x0-predictions (their states once complete) with a verifier of this process, each with the
    /// model time of the step that predicted it, as the orchestrator scores nodes it holds.
    /// </summary>
    public Task<float[]> VerifyResidentAsync(string verifier, string condition, string session, IReadOnlyList<ulong> handles, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(handles);
        Touch(session);
        var nodes = handles.Select(h => Get(session, h)).ToList();
        var times = nodes.Select(n => n.StepIndex > 0 ? (float?)n.Trajectory.Steps.Schedule.TimestepAt(n.StepIndex - 1) : null).ToList();
        var samples = nodes.Select(n =>
        {
            lock (n)
            {
                var source = n.StepIndex == n.Trajectory.Settings.Steps ? n.State : n.Prediction
                    ?? throw new InvalidRequestException("handles", $"node {n.Handle} has no x0-prediction yet; advance it first.");
                return source[..n.Trajectory.Shape.ElementCount];
            }
        }).ToList();
        return VerifyAsync(verifier, condition, nodes.Count == 0 ? new SampleShape(1, 1, 1) : nodes[0].Trajectory.Shape, samples, times: times.All(t => t is not null) ? [.. times.Select(t => t!.Value)] : null, cancellationToken: cancellationToken);
    }

    private static async Task<List<BatchTiming>> AdvanceOneAsync(ResidentNode node, int toStep, CancellationToken cancellationToken)
    {
        var trajectory = node.Trajectory;
        var prediction = node.Prediction ?? new float[trajectory.Elements];
        var timings = new List<BatchTiming>(toStep - node.StepIndex);
        await trajectory.Steps.AdvanceAsync(node.Key, node.State, prediction, node.StepIndex, toStep, request => trajectory.Batcher.StepAsync(request, cancellationToken), (reached, timing) =>
        {
            timings.Add(timing);
            lock (node)
            {
                node.Prediction = prediction;
                node.StepIndex = reached;
            }
        }).ConfigureAwait(false);
        return timings;
    }

    private void Add(string session, ResidentNode node)
    {
        var usage = Touch(session);
        if (Interlocked.Add(ref usage.Bytes, node.Bytes) > MaxResidentBytesPerSession)
        {
            Interlocked.Add(ref usage.Bytes, -node.Bytes);
            throw new ResidentMemoryExhaustedException($"this session holds {Interlocked.Read(ref usage.Bytes)} bytes of resident state and node {node.Handle} needs {node.Bytes} more than Worker:MaxResidentBytesPerSession = {MaxResidentBytesPerSession} allows; release nodes or raise the limit.");
        }

        if (Interlocked.Add(ref _residentBytes, node.Bytes) > MaxResidentBytes)
        {
            Interlocked.Add(ref _residentBytes, -node.Bytes);
            Interlocked.Add(ref usage.Bytes, -node.Bytes);
            throw new ResidentMemoryExhaustedException($"this worker holds {ResidentBytes} bytes of resident state and node {node.Handle} needs {node.Bytes} more than Worker:MaxResidentBytes = {MaxResidentBytes} allows; release nodes or raise the limit.");
        }

        node.Trajectory.Hold();
        if (!_nodes.TryAdd((session, node.Handle), node))
        {
            Interlocked.Add(ref _residentBytes, -node.Bytes);
            Interlocked.Add(ref usage.Bytes, -node.Bytes);
            node.Trajectory.Drop();
            throw new InvalidRequestException("handle", $"node {node.Handle} is already resident in this session.");
        }
    }

    /// <summary>Marks <paramref name="session"/> used now; returns its usage.</summary>
    private SessionUsage Touch(string session)
    {
        var usage = _sessions.GetOrAdd(session, _ => new SessionUsage());
        Interlocked.Exchange(ref usage.LastUsed, _time.GetTimestamp());
        return usage;
    }

    /// <summary>One session's resident bytes and when it was last used (a timestamp of the runtime's clock).</summary>
    private sealed class SessionUsage
    {
        public long Bytes;
        public long LastUsed;
    }

    private ResidentNode Get(string session, ulong handle) =>
        _nodes.TryGetValue((session, handle), out var node)
            ? node
            : throw new ResidentNodeNotFoundException($"node {handle} is not resident on this worker (never put, released, or the worker restarted).");

    /// <summary>The settings' model, sampler and condition as this process runs them; held once by the caller (<see cref="Trajectory.Drop"/> it).</summary>
    private Trajectory Resolve(TrajectorySettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        var stages = _models.GetStages(settings.Model);
        var denoiser = stages is null ? _models.GetDenoiser(settings.Model) : _engine.DenoiserFor(stages);
        var description = denoiser.Description;
        var schedule = description.Process.Steps(settings.Steps);
        var sampler = description.Process.CreateSampler(settings.Sampler, settings.Prompt);
        if (stages is null)
        {
            ClassifierFreeGuidance.Validate(settings.Guidance, description.Conditions, description.Name);
            return new Trajectory(settings, description.SampleShape, description.StateElements, new StepLoop(schedule, sampler, settings.ConditionId, settings.Guidance), _engine.BatcherFor(denoiser), null);
        }

        ClassifierFreeGuidance.Validate(settings.Guidance);
        var most = stages.TextEncoder.Description.SequenceLength - 2;
        foreach (var (field, text) in new[] { ("settings.text_prompt", settings.TextPrompt), ("settings.negative_prompt", settings.NegativePrompt ?? string.Empty) })
        {
            if (text is null)
            {
                throw new InvalidRequestException(field, $"model '{settings.Model}' is a text-to-image pipeline: its steps need the prompt to encode.");
            }

            if (stages.TextEncoder.CountTokens(text) > most)
            {
                throw new InvalidRequestException(field, $"has more than the {most} tokens the text encoder of model '{settings.Model}' takes.");
            }
        }

        // The prompts' embeddings come from this worker's own text encoder and cache: the handles are this process's condition ids.
        var prompts = _engine.PromptsFor(stages).Lease([settings.TextPrompt!, settings.NegativePrompt ?? string.Empty]);
        return new Trajectory(settings, description.SampleShape, description.StateElements, new StepLoop(schedule, sampler, prompts.Handles[0], settings.Guidance, prompts.Handles[1]), _engine.BatcherFor(denoiser), prompts);
    }

    /// <summary>
    /// One call's (or one group of resident nodes') model, sampler and condition. A pipeline's holds its prompts' cache
    /// entries while anything uses it: the call that resolved it, and each resident node made with it.
    /// </summary>
    private sealed class Trajectory(TrajectorySettings settings, SampleShape shape, int elements, StepLoop steps, DenoiserBatcher batcher, PromptEmbeddingCache.PromptLease? prompts)
    {
        private int _holds = 1;
        private int _reported;

        public TrajectorySettings Settings { get; } = settings;

        public SampleShape Shape { get; } = shape;

        public int Elements { get; } = elements;

        public StepLoop Steps { get; } = steps;

        public DenoiserBatcher Batcher { get; } = batcher;

        /// <summary>
        /// Encodes a pipeline's prompts (once; cached across calls) before its steps run; returns the encoder calls and
        /// cache hits of that encoding to the first caller only, so a call's cost account counts them once.
        /// </summary>
        public async Task<PromptEncoding> EncodeAsync(CancellationToken cancellationToken)
        {
            if (prompts is null)
            {
                return default;
            }

            var (calls, hits) = await prompts.EncodeAsync(cancellationToken).ConfigureAwait(false);
            return Interlocked.Exchange(ref _reported, 1) == 0 ? new PromptEncoding(calls, hits) : default;
        }

        public void Hold() => Interlocked.Increment(ref _holds);

        /// <summary>Gives one hold back; the last gives the prompts back to the cache.</summary>
        public void Drop()
        {
            if (Interlocked.Decrement(ref _holds) == 0)
            {
                prompts?.Dispose();
            }
        }

        public void CheckState(float[] values, string field)
        {
            if (values.Length != Elements)
            {
                throw new InvalidRequestException(field, $"has {values.Length} values but model '{Settings.Model}' samples have {Elements} ({Shape}).");
            }
        }
    }

    private sealed class ResidentNode(ulong handle, Trajectory trajectory, Randomness.RngKey key, int stepIndex, float[] state, float[]? prediction)
    {
        public ulong Handle { get; } = handle;

        public Trajectory Trajectory { get; } = trajectory;

        public Randomness.RngKey Key { get; } = key;

        public int StepIndex { get; set; } = stepIndex;

        public float[] State { get; } = state;

        public float[]? Prediction { get; set; } = prediction;

        public long Bytes { get; } = 2L * sizeof(float) * state.Length;
    }
}

/// <summary>A worker's resident memory is full (maps to ResourceExhausted).</summary>
internal sealed class ResidentMemoryExhaustedException(string message) : Exception(message);

/// <summary>A resident node is not on this worker (maps to NotFound; the orchestrator recomputes it).</summary>
internal sealed class ResidentNodeNotFoundException(string message) : Exception(message);
