using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Polly;
using SearchOrchestrator.Links;
using SearchOrchestrator.Scheduling;
using SearchOrchestrator.Tensors;

namespace SearchOrchestrator.Workers;

/// <summary>
/// One remote worker as a backend: a stateless step batcher per model (steps of every search meet in one Step call),
/// the resident operations, the measured link and compute models, and its place in the rotation. Every call has a
/// deadline; calls that may be repeated are retried by the <see cref="RetryPolicy"/>; rotation follows the one
/// <see cref="BackendHealth"/> policy: a worker that keeps failing leaves until it passes a health check.
/// </summary>
internal sealed class WorkerBackend : IDecoderBackend, IResidentStates
{
    private readonly IWorkerClient _client;
    private readonly WorkerOptions _options;
    private readonly TimeProvider _time;
    private readonly BatchingOptions _batching;
    private readonly ResiliencePipeline _retry;
    private readonly ConcurrentDictionary<string, Lazy<StepPump>> _pumps = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, Lazy<DecodePump>> _decoders = new(StringComparer.Ordinal);
    private readonly QueuedRowCount _queued = new();

    /// <summary>Wraps a joined worker.</summary>
    public WorkerBackend(IWorkerClient client, WorkerDescription description, WorkerOptions options, TimeProvider? time = null, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(description);
        ArgumentNullException.ThrowIfNull(options);
        _client = client;
        _options = options;
        _time = time ?? TimeProvider.System;
        Description = description;
        Link = new LinkCostModel(client.Endpoint);
        Health = new BackendHealth(BackendKinds.Worker, client.Endpoint, options.MaxConsecutiveFailures, logger);
        _batching = new BatchingOptions { MaxBatchSize = Math.Max(2, description.MaxBatchSize), MaxQueueDelay = TimeSpan.FromMilliseconds(1) };
        // A worker out of rotation is not retried: its work goes elsewhere at once.
        _retry = RetryPolicy.Create(options.MaxRetries, options.RetryBackoff, ex => ex is WorkerUnavailableException or WorkerDataException && Health.InRotation, _time);
    }

    /// <inheritdoc />
    public string Name => _client.Endpoint;

    /// <inheritdoc />
    public string Kind => BackendKinds.Worker;

    /// <summary>The worker's place in the rotation.</summary>
    public BackendHealth Health { get; }

    /// <summary>What the worker said it hosts when it joined.</summary>
    public WorkerDescription Description { get; }

    /// <inheritdoc />
    public bool IsAvailable => Health.InRotation;

    /// <inheritdoc />
    public int QueuedRows => _queued.Rows;

    /// <inheritdoc />
    public int MaxBatchSize => Description.MaxBatchSize;

    /// <inheritdoc />
    public ComputeCostModel Compute { get; } = new(TimeSpan.FromMilliseconds(2), TimeSpan.FromMilliseconds(1));

    /// <inheritdoc />
    public LinkCostModel? Link { get; }

    /// <summary>Measured time of the worker's decode calls by latents (a pipeline's decoder stage), for placing decodes.</summary>
    public ComputeCostModel DecoderCompute { get; } = new(TimeSpan.FromMilliseconds(2), TimeSpan.FromMilliseconds(1));

    /// <inheritdoc />
    public StepTraffic StepTraffic => StepTraffic.Sampler;

    /// <summary>This worker's resident-state operations when the pool keeps node states on workers (<see cref="WorkerModes.Resident"/>).</summary>
    public IResidentStates? ResidentStates => _options.Mode == WorkerModes.Resident ? this : null;

    /// <inheritdoc />
    public string? LastFailure => Health.LastFailure;

    /// <summary>Consecutive failed calls (reset by a success).</summary>
    public int ConsecutiveFailures => Health.ConsecutiveFailures;

    /// <summary>The client calls go through.</summary>
    internal IWorkerClient Client => _client;

    /// <summary>True when the worker runs <paramref name="model"/>'s steps or scores (a denoiser, a verifier, or a pipeline whose denoiser it serves).</summary>
    public bool Hosts(string model) => Description.Models.Any(m => m.Name == model && (m.Kind != "pipeline" || ServesStage(model, StageNames.Denoiser)));

    /// <summary>True when the worker serves <paramref name="stage"/> (<see cref="StageNames"/>) of the text-to-image pipeline <paramref name="model"/>.</summary>
    public bool ServesStage(string model, string stage) =>
        Description.Models.Any(m => m.Name == model && m.Kind == "pipeline")
        && (!Description.PipelineStages.TryGetValue(model, out var stages) || stages.Contains(stage));

    /// <summary>True when the worker serves the verifier <paramref name="verifier"/>.</summary>
    public bool HostsVerifier(string verifier) => Description.Models.Any(m => m.Name == verifier && m.Kind == "verifier");

    /// <inheritdoc />
    public async Task<StepOutcome> StepAsync(StepRequest step, TrajectorySettings settings, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(step);
        ArgumentNullException.ThrowIfNull(settings);
        using var queued = _queued.Add(step.Rows);
        var pump = _pumps.GetOrAdd(settings.Model, m => new Lazy<StepPump>(() => new StepPump(this, m, _batching, _time))).Value;
        return await pump.StepAsync(step, settings, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Stores node states on the worker.</summary>
    public async Task<Transfer> PutAsync(TrajectorySettings settings, IReadOnlyList<ResidentState> nodes, CancellationToken cancellationToken = default) =>
        (await CallAsync(ct => _client.PutAsync(settings, nodes, ct), _options.CallTimeout, retry: false, cancellationToken).ConfigureAwait(false)).Transfer;

    /// <summary>
    /// Advances resident nodes to <paramref name="toStep"/> (the deadline grows with the steps asked for); returns the
    /// traffic and the worker's passes for them.
    /// </summary>
    public async Task<(Transfer Transfer, RemotePasses Passes)> AdvanceAsync(IReadOnlyList<ulong> handles, int toStep, int steps, int rows, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(handles);
        using var queued = _queued.Add(rows);
        var call = await CallAsync(ct => _client.AdvanceAsync(handles, toStep, ct), _options.CallTimeout + (_options.StepTimeout * steps), retry: false, cancellationToken).ConfigureAwait(false);
        if (steps > 0)
        {
            // The worker's own time over the steps approximates one pass of these rows per step.
            Compute.Record(Math.Min(rows, MaxBatchSize), call.ServerTime / steps);
        }

        return (call.Transfer, call.Value);
    }

    /// <summary>Creates resident children of a resident parent.</summary>
    public async Task<Transfer> ForkAsync(ulong parent, IReadOnlyList<ResidentChild> children, CancellationToken cancellationToken = default) =>
        (await CallAsync(ct => _client.ForkAsync(parent, children, ct), _options.CallTimeout, retry: false, cancellationToken).ConfigureAwait(false)).Transfer;

    /// <summary>The states and x0-predictions of resident nodes.</summary>
    public async Task<(IReadOnlyList<ResidentState> Nodes, Transfer Transfer)> FetchAsync(IReadOnlyList<ulong> handles, CancellationToken cancellationToken = default)
    {
        var call = await CallAsync(ct => _client.FetchAsync(handles, ct), _options.CallTimeout, retry: true, cancellationToken).ConfigureAwait(false);
        return (call.Value, call.Transfer);
    }

    /// <summary>
    /// Forgets resident nodes, retried like the other repeatable calls (releasing twice is harmless); best effort after
    /// that: a worker that is gone has forgotten them already, and one that missed the release expires them when this
    /// session has been idle for its <c>Worker:SessionIdleTimeout</c>.
    /// </summary>
    public async Task ReleaseAsync(IReadOnlyList<ulong> handles, CancellationToken cancellationToken = default)
    {
        try
        {
            await CallAsync(ct => _client.ReleaseAsync(handles, ct), _options.CallTimeout, retry: true, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is WorkerUnavailableException or WorkerDataException or OperationCanceledException)
        {
            // Nothing to recover: the states are no longer needed.
        }
    }

    /// <summary>Scores resident nodes' x0-predictions with a verifier the worker hosts.</summary>
    public async Task<(float[] Scores, Transfer Transfer)> VerifyResidentAsync(string verifier, string condition, IReadOnlyList<ulong> handles, CancellationToken cancellationToken = default)
    {
        var call = await CallAsync(ct => _client.VerifyResidentAsync(verifier, condition, handles, ct), _options.CallTimeout, retry: true, cancellationToken).ConfigureAwait(false);
        return (call.Value, call.Transfer);
    }

    /// <inheritdoc />
    public async Task<(IReadOnlyList<float[]> Images, Transfer Transfer)> DecodeResidentAsync(string model, IReadOnlyList<ulong> handles, CancellationToken cancellationToken = default)
    {
        var call = await CallAsync(ct => _client.DecodeResidentAsync(model, handles, ct), _options.CallTimeout, retry: true, cancellationToken).ConfigureAwait(false);
        DecoderCompute.Record(handles.Count, call.ServerTime);
        return (call.Value, call.Transfer);
    }

    /// <summary>Scores samples with a verifier the worker hosts (what a <see cref="RemoteVerifier"/> calls).</summary>
    public async Task<(float[] Scores, Transfer Transfer)> VerifyAsync(string verifier, string condition, SampleShape shape, IReadOnlyList<float[]> samples, IReadOnlyList<string>? texts = null, IReadOnlyList<float>? times = null, CancellationToken cancellationToken = default)
    {
        var call = await CallAsync(ct => _client.VerifyAsync(verifier, condition, shape, samples, texts, times, ct), _options.CallTimeout, retry: true, cancellationToken).ConfigureAwait(false);
        return (call.Value, call.Transfer);
    }

    /// <summary>
    /// Decodes one latent with the decoder of the pipeline <paramref name="model"/> the worker hosts; latents queued by
    /// every search meet in one Decode call. Returns the image, the batch it joined and this latent's share of the call's traffic.
    /// </summary>
    public async Task<(float[] Image, BatchTiming Timing, Transfer Transfer)> DecodeAsync(string model, ReadOnlyMemory<float> latent, CancellationToken cancellationToken = default)
    {
        var pump = _decoders.GetOrAdd(model, m => new Lazy<DecodePump>(() => new DecodePump(this, m, _batching, _time))).Value;
        var work = new DecodeWork(latent, cancellationToken);
        var timing = await pump.SubmitAsync(work).ConfigureAwait(false);
        return (work.Image!, timing, work.Transfer);
    }

    /// <summary>Probes the link with every configured size, <see cref="WorkerOptions.ProbeRepeats"/> times each (largest last).</summary>
    public async Task ProbeAsync(CancellationToken cancellationToken = default)
    {
        for (var r = 0; r < _options.ProbeRepeats; r++)
        {
            foreach (var size in _options.ProbeSizes)
            {
                await CallAsync(ct => _client.ProbeAsync(size / 2, size - (size / 2), ct), _options.CallTimeout, retry: true, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>
    /// Times the worker's forward passes of <paramref name="denoiser"/> at one row and at eight (twice each; the first
    /// warms up), on root states drawn by this orchestrator, so placement knows its compute before real traffic refines it.
    /// </summary>
    public async Task CalibrateAsync(Denoising.DenoiserDescription denoiser, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(denoiser);
        var sampler = denoiser.Process.DefaultSampler(0);
        var prior = Processes.NodeStates.Prior(denoiser.Process.CreateSampler(sampler), new Randomness.RngKey(1), denoiser.StateElements);
        var settings = new TrajectorySettings(denoiser.Name, 1, sampler, null, 1, denoiser.Conditions.NullId ?? 0);
        foreach (var (rows, warmUp) in new[] { (1, true), (1, false), (8, true), (8, false) })
        {
            var items = Enumerable.Range(0, rows).Select(i => new RemoteStep(new Randomness.RngKey((ulong)i), 0, (float[])prior.Clone(), new float[prior.Length])).ToList();
            var call = await CallAsync(ct => _client.StepAsync(settings, items, ct), _options.CallTimeout, retry: true, cancellationToken).ConfigureAwait(false);
            if (!warmUp)
            {
                Compute.Record(rows, call.ServerTime);
            }
        }
    }

    /// <summary>Asks the worker's health service; a healthy worker out of rotation comes back.</summary>
    public async Task<bool> CheckHealthAsync(CancellationToken cancellationToken = default)
    {
        using var deadline = new CancellationTokenSource(_options.CallTimeout, _time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(deadline.Token, cancellationToken);
        bool healthy;
        try
        {
            healthy = await _client.IsHealthyAsync(linked.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is WorkerUnavailableException || (ex is OperationCanceledException && !cancellationToken.IsCancellationRequested))
        {
            healthy = false;
        }

        return Health.Checked(healthy);
    }

    /// <summary>Takes the worker out of rotation now (drain, or a fault seen elsewhere).</summary>
    public void TakeOutOfRotation() => Health.TakeOutOfRotation();

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        foreach (var pump in _pumps.Values.Where(p => p.IsValueCreated))
        {
            await pump.Value.DisposeAsync().ConfigureAwait(false);
        }

        foreach (var pump in _decoders.Values.Where(p => p.IsValueCreated))
        {
            await pump.Value.DisposeAsync().ConfigureAwait(false);
        }

        await _client.DisposeAsync().ConfigureAwait(false);
    }

    /// <summary>
    /// One call with its deadline and the link and health bookkeeping; calls that may be repeated go through the
    /// <see cref="RetryPolicy"/>. Failures surface as <see cref="WorkerUnavailableException"/> or
    /// <see cref="WorkerDataException"/>; the caller's own cancellation surfaces as itself.
    /// </summary>
    private async Task<WorkerCall<T>> CallAsync<T>(Func<CancellationToken, Task<WorkerCall<T>>> call, TimeSpan timeout, bool retry, CancellationToken cancellationToken) =>
        await (retry ? _retry : ResiliencePipeline.Empty).ExecuteAsync(
            async ct => await AttemptAsync(call, timeout, ct).ConfigureAwait(false),
            cancellationToken).ConfigureAwait(false);

    private async Task<WorkerCall<T>> AttemptAsync<T>(Func<CancellationToken, Task<WorkerCall<T>>> call, TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var deadline = new CancellationTokenSource(timeout, _time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(deadline.Token, cancellationToken);
        try
        {
            var result = await call(linked.Token).ConfigureAwait(false);
            Link!.Record(result.Transfer);
            Health.Succeeded();
            return result;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            throw;
        }
        catch (Exception ex) when (ex is WorkerUnavailableException or WorkerDataException or OperationCanceledException)
        {
            var failure = ex is OperationCanceledException
                ? new WorkerUnavailableException(Name, $"missed its deadline of {timeout.TotalSeconds:0.###} s.", ex)
                : ex;
            Health.Failed(failure.Message);
            if (failure == ex)
            {
                throw;
            }

            throw failure;
        }
    }

    private sealed class StepWork(StepRequest step, TrajectorySettings settings, CancellationToken cancellationToken)
        : BatchWork(step.Rows, cancellationToken)
    {
        public StepRequest Step { get; } = step;

        public TrajectorySettings Settings { get; } = settings;

        public Transfer Transfer { get; set; }

        public PromptEncoding Encoding { get; set; }
    }

    /// <summary>Batches stateless steps for one model into Step calls (one per distinct trajectory settings).</summary>
    private sealed class StepPump(WorkerBackend owner, string model, BatchingOptions options, TimeProvider time)
        : BatchPump<StepWork>($"{owner.Name}/{model}", options, time)
    {
        public async Task<StepOutcome> StepAsync(StepRequest step, TrajectorySettings settings, CancellationToken cancellationToken)
        {
            var work = new StepWork(step, settings, cancellationToken);
            var timing = await SubmitAsync(work).ConfigureAwait(false);
            return new StepOutcome(timing, work.Transfer) { Encoding = work.Encoding };
        }

        protected override async Task ExecuteAsync(IReadOnlyList<StepWork> batch, int lane, CancellationToken passCancellation)
        {
            await Task.WhenAll(batch.GroupBy(w => w.Settings).Select(async group =>
            {
                var works = group.ToList();
                // Results land in scratch buffers first: a failed call must leave every node's state untouched.
                var items = works.Select(w => new RemoteStep(w.Step.Key, w.Step.StepIndex, (float[])w.Step.State.Clone(), new float[w.Step.Prediction.Length])).ToList();
                var call = await owner.CallAsync(ct => owner._client.StepAsync(group.Key, items, ct), owner._options.CallTimeout, retry: true, passCancellation).ConfigureAwait(false);
                owner.Compute.Record(works.Sum(w => w.Rows), call.ServerTime);
                var totalRows = works.Sum(w => w.Rows);
                for (var i = 0; i < works.Count; i++)
                {
                    items[i].State.CopyTo(works[i].Step.State, 0);
                    items[i].Prediction.CopyTo(works[i].Step.Prediction, 0);
                    works[i].Transfer = call.Transfer.Share((double)works[i].Rows / totalRows);
                }

                // The call's encoding is counted once, with its first step (steps of one call share their settings).
                works[0].Encoding = call.Value;
            })).ConfigureAwait(false);
        }
    }

    private sealed class DecodeWork(ReadOnlyMemory<float> latent, CancellationToken cancellationToken) : BatchWork(1, cancellationToken)
    {
        public ReadOnlyMemory<float> Latent { get; } = latent;

        public float[]? Image { get; set; }

        public Transfer Transfer { get; set; }
    }

    /// <summary>Batches one pipeline's decodes into Decode calls.</summary>
    private sealed class DecodePump(WorkerBackend owner, string model, BatchingOptions options, TimeProvider time)
        : BatchPump<DecodeWork>($"{owner.Name}/{model}/vae_decoder", options, time)
    {
        public new Task<BatchTiming> SubmitAsync(DecodeWork work) => base.SubmitAsync(work);

        protected override async Task ExecuteAsync(IReadOnlyList<DecodeWork> batch, int lane, CancellationToken passCancellation)
        {
            var latents = batch.Select(w => w.Latent.ToArray()).ToList();
            var call = await owner.CallAsync(ct => owner._client.DecodeAsync(model, latents, ct), owner._options.CallTimeout, retry: true, passCancellation).ConfigureAwait(false);
            owner.DecoderCompute.Record(batch.Count, call.ServerTime);
            for (var i = 0; i < batch.Count; i++)
            {
                batch[i].Image = call.Value[i];
                batch[i].Transfer = call.Transfer.Share(1.0 / batch.Count);
            }
        }
    }
}
