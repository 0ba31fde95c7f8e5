using System.Collections.Concurrent;
using Grpc.Core;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using SearchOrchestrator.Denoising;
using SearchOrchestrator.Links;
using SearchOrchestrator.Onnx.Manifests;
using SearchOrchestrator.Onnx.Repository;
using SearchOrchestrator.Protos.Inference;
using SearchOrchestrator.Scheduling;
using SearchOrchestrator.Workers;

namespace SearchOrchestrator.Server.OpenInference;

/// <summary>
/// An Open Inference Protocol (KServe v2) server as a placement backend (kind <c>kserve</c>): for each of our denoisers
/// it runs, a <see cref="DenoiserBatcher"/> over a <see cref="KServeDenoiser"/>, so steps of every search meet in one
/// <c>ModelInfer</c> and the sampler update runs here; for each pipeline whose VAE decoder it runs
/// (<c>&lt;pipeline&gt;/vae_decoder</c>), a <see cref="DecoderBatcher"/> over a <see cref="KServeDecoder"/>, placed by
/// <see cref="WorkerOptions.DecoderPlacement"/> like a worker's decoder. Stateless: every step and decode moves its
/// tensors, and placement charges its link for every one as for a stateless worker.
/// <para>
/// The link and compute are measured, not assumed. A KServe reply carries no server time, so a <c>ModelInfer</c>'s
/// elapsed time mixes transfer and forward pass and cannot be split by itself. The link is therefore fitted from calls
/// that do no model work: <c>ServerLive</c> (an empty round trip: α) and <c>ModelInfer</c> requests of several payload
/// sizes addressed to a model the server does not have (it reads the whole request, then answers NOT_FOUND: α + β·bytes
/// without compute; β is assumed the same both ways). Each real pass's elapsed time is then split with that fit:
/// transfer = α + β·bytes (at most the elapsed time), compute = the rest, which trains the
/// <see cref="ComputeCostModel"/> (calibrated at connect with passes of 1 and up to 8 rows). Real passes add to the link's
/// totals (<see cref="LinkCostModel.RecordUsage"/>) but not to its fit; the fit is refreshed whenever the server comes
/// back into rotation.
/// </para>
/// <para>
/// Failures surface as <see cref="WorkerUnavailableException"/> (unreachable, failed call, deadline) or
/// <see cref="WorkerDataException"/> (a malformed or non-finite reply), so the tree reruns the step elsewhere; a failed
/// pass leaves every node's state untouched. A connection failure takes the server out of rotation at once, other
/// failures after <see cref="WorkerOptions.MaxConsecutiveFailures"/> in a row; it comes back when ModelReady says every
/// mapped model is ready (not ServerReady: Triton holds it false while any of its models, ours or not, is not ready).
/// A pass the server refuses as INVALID_ARGUMENT (a batch larger than it takes) is a configuration fault: the server
/// leaves the rotation for good, logged once with the fix, rather than flap in and out.
/// </para>
/// <para>
/// Rows: a pass never carries more than <see cref="KServeEndpointOptions.MaxBatchSize"/> rows, nor more than any mapped
/// model's <c>max_batch_size</c> where the server offers Triton's ModelConfig; calibration included.
/// </para>
/// </summary>
public sealed class KServeBackend : IStatelessBackend, IDecoderBackend
{
    /// <summary>The model name link probes address: no server should have it.</summary>
    public const string ProbeModel = "searchorchestrator.link-probe";

    private readonly KServeEndpoint _endpoint;
    private readonly WorkerOptions _options;
    private readonly Dictionary<string, DenoiserBatcher> _batchers;
    private readonly Dictionary<string, DecoderBatcher> _decoders;
    private readonly ConcurrentDictionary<int, Transfer> _passByRows = new();
    private readonly ConcurrentDictionary<int, Transfer> _decodeByLatents = new();
    private readonly QueuedRowCount _queued = new();
    private int _disposed;

    private KServeBackend(KServeEndpoint endpoint, IReadOnlyList<KServeDenoiser> denoisers, IReadOnlyList<KServeDecoder> decoders, WorkerOptions options, TimeProvider time, ILogger logger)
    {
        _endpoint = endpoint;
        _options = options;
        Health = new BackendHealth(BackendKinds.KServe, endpoint.Options.Endpoint, options.MaxConsecutiveFailures, logger);
        MaxBatchSize = denoisers.Select(d => d.Remote.MaxBatchSize ?? int.MaxValue).Concat(decoders.Select(d => d.Remote.MaxBatchSize ?? int.MaxValue)).Append(Math.Max(2, endpoint.Options.MaxBatchSize)).Min();
        Link = new LinkCostModel(endpoint.Options.Endpoint);
        var batching = new BatchingOptions { MaxBatchSize = MaxBatchSize, MaxQueueDelay = TimeSpan.FromMilliseconds(1) };
        _batchers = denoisers.ToDictionary(d => d.Description.Name, d => new DenoiserBatcher(new MeasuredDenoiser(this, d), batching, time), StringComparer.Ordinal);
        _decoders = decoders.ToDictionary(d => d.Description.Name, d => new DecoderBatcher(new MeasuredDecoder(this, d), batching, time), StringComparer.Ordinal);
        Denoisers = denoisers;
        Decoders = decoders;
    }

    /// <inheritdoc />
    public string Name => _endpoint.Options.Endpoint;

    /// <inheritdoc />
    public string Kind => BackendKinds.KServe;

    /// <summary>The server's place in the rotation.</summary>
    public BackendHealth Health { get; }

    /// <inheritdoc />
    public bool IsAvailable => Health.InRotation && Volatile.Read(ref _disposed) == 0;

    /// <inheritdoc />
    public int QueuedRows => _queued.Rows;

    /// <inheritdoc />
    public int MaxBatchSize { get; }

    /// <inheritdoc />
    public ComputeCostModel Compute { get; } = new(TimeSpan.FromMilliseconds(2), TimeSpan.FromMilliseconds(1));

    /// <inheritdoc />
    public LinkCostModel Link { get; }

    LinkCostModel? IStepBackend.Link => Link;

    /// <inheritdoc />
    public StepTraffic StepTraffic => StepTraffic.Network;

    /// <inheritdoc />
    public IResidentStates? ResidentStates => null;

    /// <summary>Every ModelInfer on this server's link with its whole elapsed time (transfer and remote compute together).</summary>
    public LinkTraffic Traffic => _endpoint.Traffic;

    /// <summary>The connected denoisers, each checked against our manifest.</summary>
    public IReadOnlyList<KServeDenoiser> Denoisers { get; }

    /// <summary>The connected pipeline VAE decoders, each checked against our pipeline's.</summary>
    public IReadOnlyList<KServeDecoder> Decoders { get; }

    /// <inheritdoc />
    public ComputeCostModel DecoderCompute { get; } = new(TimeSpan.FromMilliseconds(2), TimeSpan.FromMilliseconds(1));

    /// <inheritdoc />
    public string? LastFailure => Health.LastFailure;

    /// <summary>Consecutive failed passes (reset by a success).</summary>
    public int ConsecutiveFailures => Health.ConsecutiveFailures;

    /// <summary>
    /// Connects to the server at <see cref="KServeEndpointOptions.Endpoint"/>: checks it is ready, connects every mapped
    /// model (each denoiser checked against our manifest from <paramref name="localManifest"/>, each pipeline's
    /// <c>vae_decoder</c> against our pipeline's decoder from <paramref name="localDecoder"/>), fits the link and times the
    /// denoisers' forward passes. <paramref name="callInvoker"/> replaces the channel the backend would open (tests, throttled links).
    /// </summary>
    /// <exception cref="WorkerRefusedException">
    /// A mapped model is not ours, the server does not know it (NOT_FOUND), its metadata does not match our manifest, or
    /// it refuses the calibration pass (a max_batch_size below ours, on a server without ModelConfig): each message says
    /// what to change; joining again unchanged would fail the same way.
    /// </exception>
    /// <exception cref="WorkerUnavailableException">The server cannot be reached, fails, or the model is not ready yet.</exception>
    public static async Task<KServeBackend> ConnectAsync(
        KServeEndpointOptions options,
        Func<string, ModelManifest?> localManifest,
        WorkerOptions pool,
        TimeProvider? time = null,
        ILogger? logger = null,
        CallInvoker? callInvoker = null,
        Func<string, DecoderDescription?>? localDecoder = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(localManifest);
        ArgumentNullException.ThrowIfNull(pool);
        time ??= TimeProvider.System;
        logger ??= NullLogger.Instance;
        var endpoint = callInvoker is null ? KServeEndpoint.Create(options, time: time, logger: logger) : new KServeEndpoint(options, callInvoker, time: time, logger: logger);
        KServeBackend? backend = null;
        try
        {
            var denoisers = new List<KServeDenoiser>();
            var decoders = new List<KServeDecoder>();
            foreach (var model in options.Models.Keys.Order(StringComparer.Ordinal))
            {
                if (KServeStages.Parse(model) is { } stage)
                {
                    var decoder = localDecoder?.Invoke(stage.Pipeline)
                        ?? throw new WorkerRefusedException(options.Endpoint, $"model '{model}' is mapped in its Models, but this orchestrator has no ready text-to-image pipeline '{stage.Pipeline}' whose {KServeStages.VaeDecoder} it could check; remove the mapping or deploy the pipeline here too.");
                    decoders.Add(await Map(options.Endpoint, () => endpoint.ConnectDecoderAsync(model, decoder, cancellationToken)).ConfigureAwait(false));
                    continue;
                }

                var manifest = localManifest(model);
                if (manifest is null || manifest.Kind != ManifestNames.Denoiser)
                {
                    throw new WorkerRefusedException(options.Endpoint, $"model '{model}' is mapped in its Models, but this orchestrator has no ready denoiser '{model}' to check the server's metadata against; remove the mapping or deploy the model here too.");
                }

                var description = ModelRepository.DescribeDenoiser(model, manifest);
                if (description.OutputElements != description.SampleShape.ElementCount)
                {
                    // A masked model's output is logits per position, not one value per sample element.
                    throw new WorkerRefusedException(options.Endpoint, $"model '{model}' is a {description.Process.Name} model; the kserve backend runs gaussian denoisers (one prediction value per sample value) only; remove it from Models.");
                }

                denoisers.Add(await Map(options.Endpoint, () => endpoint.ConnectDenoiserAsync(model, manifest, cancellationToken)).ConfigureAwait(false));
            }

            backend = new KServeBackend(endpoint, denoisers, decoders, pool, time, logger);
            await backend.ProbeAsync(cancellationToken).ConfigureAwait(false);
            foreach (var denoiser in denoisers)
            {
                await backend.CalibrateAsync(denoiser, cancellationToken).ConfigureAwait(false);
            }

            return backend;
        }
        catch
        {
            if (backend is not null)
            {
                await backend.DisposeAsync().ConfigureAwait(false);
            }
            else
            {
                endpoint.Dispose();
            }

            throw;
        }
    }

    /// <inheritdoc />
    public bool Hosts(string model) => _batchers.ContainsKey(model);

    /// <inheritdoc />
    public bool ServesStage(string model, string stage) => stage == StageNames.Decoder && _decoders.ContainsKey(model);

    /// <inheritdoc />
    public async Task<(float[] Image, BatchTiming Timing, Transfer Transfer)> DecodeAsync(string model, ReadOnlyMemory<float> latent, CancellationToken cancellationToken = default)
    {
        if (!_decoders.TryGetValue(model, out var batcher))
        {
            throw new WorkerUnavailableException(Name, $"does not run the {KServeStages.VaeDecoder} of pipeline '{model}'.");
        }

        using var queued = _queued.Add(1);
        try
        {
            var (image, timing) = await batcher.DecodeAsync(latent, cancellationToken).ConfigureAwait(false);
            Health.Succeeded();
            // Passes of one size carry the same bytes; each latent's share of its pass is one over its latents.
            return (image, timing, _decodeByLatents.GetValueOrDefault(timing.BatchRows).Share(1.0 / timing.BatchRows));
        }
        catch (KServeBackendException ex)
        {
            Health.Failed(ex.Message, fatal: ex.Status == StatusCode.Unavailable);
            throw ex.Status is null ? new WorkerDataException(Name, ex.Message) : new WorkerUnavailableException(Name, ex.Message, ex);
        }
        catch (Exception ex) when (ex is ObjectDisposedException or System.Threading.Channels.ChannelClosedException)
        {
            throw new WorkerUnavailableException(Name, "left the pool before the decode ran.", ex);
        }
    }

    /// <inheritdoc />
    public async Task<StepOutcome> StepAsync(StepRequest step, TrajectorySettings settings, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(step);
        ArgumentNullException.ThrowIfNull(settings);
        if (!_batchers.TryGetValue(settings.Model, out var batcher))
        {
            throw new WorkerUnavailableException(Name, $"does not run model '{settings.Model}' (it runs {string.Join(", ", _batchers.Keys.Select(k => $"'{k}'"))}).");
        }

        var rows = step.Rows;
        using var queued = _queued.Add(rows);
        try
        {
            var timing = await batcher.StepAsync(step, cancellationToken).ConfigureAwait(false);
            Health.Succeeded();
            // Passes of one size carry the same bytes; each step's share of its pass is its share of the rows.
            var pass = _passByRows.GetValueOrDefault(timing.BatchRows);
            return new StepOutcome(timing, pass.Share((double)rows / timing.BatchRows));
        }
        catch (KServeBackendException ex) when (ex.Status == StatusCode.InvalidArgument)
        {
            Health.Refuse($"{ex.Message} The server refuses a pass of rows ours are shaped for: set {KServeOptions.SectionName}:KServe:<n>:MaxBatchSize to at most its max_batch_size (or raise max_batch_size in its config.pbtxt) and restart.");
            throw new WorkerUnavailableException(Name, ex.Message, ex);
        }
        catch (KServeBackendException ex)
        {
            Health.Failed(ex.Message, fatal: ex.Status == StatusCode.Unavailable);
            throw ex.Status is null ? new WorkerDataException(Name, ex.Message) : new WorkerUnavailableException(Name, ex.Message, ex);
        }
        catch (Exception ex) when (ex is ObjectDisposedException or System.Threading.Channels.ChannelClosedException)
        {
            throw new WorkerUnavailableException(Name, "left the pool before the step ran.", ex);
        }
    }

    /// <summary>
    /// Ready when ModelReady says every mapped model is; a backend out of rotation is probed again before it comes back.
    /// One the server refused (<see cref="Refusal"/>) never comes back.
    /// </summary>
    public async Task<bool> CheckHealthAsync(CancellationToken cancellationToken = default)
    {
        if (Health.Refusal is not null)
        {
            return false;
        }

        bool ready;
        try
        {
            ready = true;
            foreach (var (name, version) in Denoisers.Select(d => (d.Remote.Name, d.Remote.Version)).Concat(Decoders.Select(d => (d.Remote.Name, d.Remote.Version))))
            {
                ready &= (await KServeEndpoint.CallAsync(Name, "ModelReady", c => _endpoint.Client.ModelReadyAsync(new ModelReadyRequest { Name = name, Version = version }, _endpoint.Headers, _endpoint.Deadline(_endpoint.Options.ConnectTimeout), c), cancellationToken).ConfigureAwait(false)).Ready;
            }

            if (ready && !Health.InRotation)
            {
                await ProbeAsync(cancellationToken).ConfigureAwait(false);
            }
        }
        catch (Exception ex) when (ex is KServeBackendException or WorkerUnavailableException)
        {
            ready = false;
        }

        return Health.Checked(ready);
    }

    /// <summary>Why the server refused our passes and left the rotation for good; null while it has not.</summary>
    public string? Refusal => Health.Refusal;

    /// <summary>
    /// Fits the link: <see cref="WorkerOptions.ProbeRepeats"/> rounds of one ServerLive and one ModelInfer of each
    /// nonzero <see cref="WorkerOptions.ProbeSizes"/> addressed to <see cref="ProbeModel"/>.
    /// </summary>
    /// <exception cref="WorkerUnavailableException">A probe failed for a reason other than the expected refusal.</exception>
    public Task ProbeAsync(CancellationToken cancellationToken = default) =>
        Map(Name, async () =>
        {
            await _endpoint.ProbeLinkAsync(Name, Link, _options.ProbeRepeats, _options.ProbeSizes, cancellationToken).ConfigureAwait(false);
            return true;
        });

    /// <summary>
    /// Whether a probe's failure is the server's refusal of the unknown model: NOT_FOUND from current Triton and KServe
    /// servers, INVALID_ARGUMENT, UNIMPLEMENTED, FAILED_PRECONDITION or INTERNAL from others, and UNAVAILABLE naming the
    /// model from Triton up to r22.07 ("Request for unknown model: '…' is not found"). An UNAVAILABLE that does not
    /// name it is a transport failure.
    /// </summary>
    internal static bool IsProbeRefusal(RpcException ex) =>
        ex.StatusCode is StatusCode.NotFound or StatusCode.InvalidArgument or StatusCode.Unimplemented or StatusCode.FailedPrecondition or StatusCode.Internal
        || (ex.StatusCode == StatusCode.Unavailable && ex.Status.Detail.Contains(ProbeModel, StringComparison.Ordinal));

    /// <summary>Takes the server out of rotation now (drain, or a fault seen elsewhere).</summary>
    public void TakeOutOfRotation() => Health.TakeOutOfRotation();

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return;
        }

        foreach (var batcher in _batchers.Values)
        {
            await batcher.DisposeAsync().ConfigureAwait(false);
        }

        foreach (var decoder in _decoders.Values)
        {
            await decoder.DisposeAsync().ConfigureAwait(false);
        }

        _endpoint.Dispose();
    }

    /// <summary>
    /// Times passes of 1 and min(8, <see cref="MaxBatchSize"/>) rows (twice each; the first warms up) so placement knows
    /// the compute from the start. A pass refused as INVALID_ARGUMENT means the server takes fewer rows than we send (a
    /// server without ModelConfig to say so): refused, naming the setting.
    /// </summary>
    private async Task CalibrateAsync(KServeDenoiser denoiser, CancellationToken cancellationToken)
    {
        var description = denoiser.Description;
        var elements = description.SampleShape.ElementCount;
        var condition = description.Conditions.Labels.Count > 0 ? description.Conditions.Resolve(description.Conditions.Labels[0], description.Name) : description.Conditions.NullId ?? 0;
        var measured = new MeasuredDenoiser(this, denoiser);
        var large = Math.Min(8, MaxBatchSize);
        foreach (var (rows, warmUp) in new[] { (1, true), (1, false), (large, true), (large, false) })
        {
            var batch = new DenoiserBatch(rows, new float[rows * elements], new float[rows], Enumerable.Repeat(condition, rows).ToArray());
            try
            {
                await Map(Name, async () =>
                {
                    await measured.PredictAsync(batch, new float[rows * elements], cancellationToken, record: !warmUp).ConfigureAwait(false);
                    return true;
                }).ConfigureAwait(false);
            }
            catch (WorkerUnavailableException ex) when (ex.InnerException is KServeBackendException { Status: StatusCode.InvalidArgument } refused)
            {
                throw new WorkerRefusedException(Name, $"{refused.Message} It refused a calibration pass of {rows} rows: its max_batch_size is likely below that; set {KServeOptions.SectionName}:KServe:<n>:MaxBatchSize to at most its max_batch_size (or raise max_batch_size in its config.pbtxt).");
            }
        }
    }

    /// <summary>Maps a connect-time failure: a refusal of content (metadata) is final, anything else may pass with time.</summary>
    private static async Task<T> Map<T>(string endpoint, Func<Task<T>> call)
    {
        try
        {
            return await call().ConfigureAwait(false);
        }
        catch (KServeBackendException ex) when (ex.Refused || (ex.Status is null && !ex.NotReady))
        {
            throw new WorkerRefusedException(endpoint, ex.Message);
        }
        catch (KServeBackendException ex)
        {
            throw new WorkerUnavailableException(endpoint, ex.Message, ex);
        }
    }

    /// <summary>
    /// The denoiser the batcher calls: one <c>ModelInfer</c> per pass, its elapsed time split into transfer (the link's
    /// fit for its bytes) and compute (the rest).
    /// </summary>
    private sealed class MeasuredDenoiser(KServeBackend owner, KServeDenoiser inner) : IDenoiser
    {
        public DenoiserDescription Description => inner.Description;

        public Task PredictAsync(DenoiserBatch batch, Memory<float> output, CancellationToken cancellationToken = default) =>
            PredictAsync(batch, output, cancellationToken, record: true);

        public async Task PredictAsync(DenoiserBatch batch, Memory<float> output, CancellationToken cancellationToken, bool record)
        {
            var sample = await inner.PredictMeasuredAsync(batch, output, cancellationToken).ConfigureAwait(false);
            var bytes = sample.BytesSent + sample.BytesReceived;
            var transfer = TimeSpan.FromTicks(Math.Min(sample.Elapsed.Ticks, owner.Link.Predict(bytes).Ticks));
            var traffic = new Transfer(sample.BytesSent, sample.BytesReceived, transfer);
            owner.Link.RecordUsage(traffic);
            if (record)
            {
                owner.Compute.Record(batch.Count, sample.Elapsed - transfer);
                owner._passByRows[batch.Count] = traffic;
            }
        }
    }

    /// <summary>
    /// The decoder the batcher calls: one <c>ModelInfer</c> per pass, its elapsed time split into transfer (the link's
    /// fit for its bytes) and compute (the rest), as for steps.
    /// </summary>
    private sealed class MeasuredDecoder(KServeBackend owner, KServeDecoder inner) : ISampleDecoder
    {
        public DecoderDescription Description => inner.Description;

        public async Task DecodeAsync(int count, ReadOnlyMemory<float> latents, Memory<float> images, CancellationToken cancellationToken = default)
        {
            var sample = await inner.DecodeMeasuredAsync(count, latents, images, cancellationToken).ConfigureAwait(false);
            var transfer = TimeSpan.FromTicks(Math.Min(sample.Elapsed.Ticks, owner.Link.Predict(sample.BytesSent + sample.BytesReceived).Ticks));
            var traffic = new Transfer(sample.BytesSent, sample.BytesReceived, transfer);
            owner.Link.RecordUsage(traffic);
            owner.DecoderCompute.Record(count, sample.Elapsed - transfer);
            owner._decodeByLatents[count] = traffic;
        }
    }
}
