using Grpc.Core;
using Grpc.Net.Client;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using SearchOrchestrator.Denoising;
using SearchOrchestrator.Onnx.Manifests;
using SearchOrchestrator.Onnx.Repository;
using SearchOrchestrator.Protos.Inference;
using SearchOrchestrator.Server.Workers;

namespace SearchOrchestrator.Server.OpenInference;

/// <summary>
/// One Open Inference Protocol server: the channel to it, its link traffic, and the denoisers of ours it runs. A
/// denoiser is connected only after the server and model report ready and the model's metadata matches our manifest.
/// </summary>
public sealed class KServeEndpoint : IDisposable
{
    private readonly GrpcChannel? _ownedChannel;
    private readonly ILogger _logger;

    /// <summary>Creates the endpoint over <paramref name="callInvoker"/>, e.g. a channel's, which the caller owns.</summary>
    public KServeEndpoint(KServeEndpointOptions options, CallInvoker callInvoker, LinkTraffic? traffic = null, TimeProvider? time = null, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(callInvoker);
        Options = options;
        Client = new GRPCInferenceService.GRPCInferenceServiceClient(callInvoker);
        Traffic = traffic ?? new LinkTraffic(options.Endpoint);
        Time = time ?? TimeProvider.System;
        _logger = logger ?? NullLogger.Instance;
    }

    private KServeEndpoint(KServeEndpointOptions options, GrpcChannel channel, LinkTraffic? traffic, TimeProvider? time, ILogger? logger)
        : this(options, channel.CreateCallInvoker(), traffic, time, logger)
    {
        _ownedChannel = channel;
    }

    /// <summary>Opens a channel to <see cref="KServeEndpointOptions.Endpoint"/>, owned (and disposed) by the endpoint.</summary>
    public static KServeEndpoint Create(KServeEndpointOptions options, LinkTraffic? traffic = null, TimeProvider? time = null, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        return new KServeEndpoint(options, GrpcChannel.ForAddress(options.Endpoint, new GrpcChannelOptions { MaxReceiveMessageSize = options.MaxReceiveMessageSize, HttpHandler = TlsTrust.CreateHandler(options.Tls) }), traffic, time, logger);
    }

    /// <summary>The endpoint's settings.</summary>
    public KServeEndpointOptions Options { get; }

    /// <summary>Bytes and time of every <c>ModelInfer</c> call on this link.</summary>
    public LinkTraffic Traffic { get; }

    internal GRPCInferenceService.GRPCInferenceServiceClient Client { get; }

    internal TimeProvider Time { get; }

    /// <summary>gRPC frames each message with a 1-byte compression flag and a 4-byte length.</summary>
    internal const int GrpcMessagePrefix = 5;

    internal Metadata Headers => Options.ApiKey is { Length: > 0 } key ? new Metadata { { "x-api-key", key } } : [];

    /// <summary>
    /// Checks ModelReady (not ServerReady, which Triton holds false while any of its models is not ready), reads
    /// ModelMetadata and compares every tensor with our manifest, reads ModelConfig's <c>max_batch_size</c> where the
    /// server offers it, then returns the denoiser <paramref name="model"/> backed by this server.
    /// </summary>
    /// <exception cref="KServeBackendException">
    /// Not ready, unreachable, unknown to the server (NOT_FOUND: <see cref="KServeBackendException.Refused"/>, with the
    /// RemoteName / Version hint), or the metadata does not match (the message names each tensor that differs).
    /// </exception>
    public async Task<KServeDenoiser> ConnectDenoiserAsync(string model, ModelManifest manifest, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(manifest);
        if (!Options.Models.TryGetValue(model, out var mapping))
        {
            throw new KServeBackendException($"{Options.Endpoint}: model '{model}' is not mapped; add {KServeOptions.SectionName}:KServe:<n>:Models:{model}.");
        }

        var description = ModelRepository.DescribeDenoiser(model, manifest);
        var remote = new RemoteModel(mapping.RemoteName ?? model, mapping.Version ?? string.Empty,
            Resolve("sample", true), Resolve("time", true), Resolve("condition", true), Resolve("prediction", false));
        var what = $"{Options.Endpoint}: model '{model}' (remote '{remote.Name}'{(remote.Version.Length > 0 ? $" version '{remote.Version}'" : string.Empty)})";

        // Readiness is the model's, not the server's: Triton's ServerReady is false while any of its models is not ready.
        var hint = $"check {KServeOptions.SectionName}:KServe:<n>:Models:{model}:RemoteName and :Version against the server's models";
        var modelReady = await CallAsync(what, "ModelReady", c => Client.ModelReadyAsync(new ModelReadyRequest { Name = remote.Name, Version = remote.Version }, Headers, Deadline(Options.ConnectTimeout), c), cancellationToken, hint).ConfigureAwait(false);
        if (!modelReady.Ready)
        {
            throw new KServeBackendException($"{what}: ModelReady says it is not ready; {hint}.") { NotReady = true };
        }

        var metadata = await CallAsync(what, "ModelMetadata", c => Client.ModelMetadataAsync(new ModelMetadataRequest { Name = remote.Name, Version = remote.Version }, Headers, Deadline(Options.ConnectTimeout), c), cancellationToken, hint).ConfigureAwait(false);
        var problems = KServeMetadataCheck.Compare(manifest, remote, metadata, out var trailingAxes);
        if (problems.Count > 0)
        {
            throw new KServeBackendException($"{what}: the server's metadata does not match our manifest: {string.Join("; ", problems)}.");
        }

        var maxBatchSize = await ReadMaxBatchSizeAsync(what, remote.Name, remote.Version, cancellationToken).ConfigureAwait(false);
        if (maxBatchSize is < 2)
        {
            throw new KServeBackendException($"{what}: its ModelConfig says max_batch_size {maxBatchSize}; a guided step takes two rows, so the model must batch at least 2 (raise max_batch_size in its config.pbtxt).") { Refused = true };
        }

        OpenInferenceLog.BackendConnected(_logger, Options.Endpoint, model, remote.Name, remote.Version);
        return new KServeDenoiser(this, description, remote with { TrailingAxes = trailingAxes, MaxBatchSize = maxBatchSize });

        string Resolve(string role, bool input) =>
            mapping.Tensors.TryGetValue(role, out var name) ? name : (input ? manifest.Inputs : manifest.Outputs)?.GetValueOrDefault(role)?.Name
                ?? throw new KServeBackendException($"model '{model}': our manifest has no {(input ? "input" : "output")} '{role}'.");
    }

    /// <summary>
    /// Checks ModelReady and ModelMetadata of the stage <c>&lt;pipeline&gt;/vae_decoder</c> mapped as
    /// <paramref name="model"/> against our pipeline's decoder (<paramref name="decoder"/>): one FP32 input
    /// <c>latent_sample</c> [-1, …latent] and an FP32 output <c>sample</c> [-1, …image] (a -1 matches any size), then
    /// returns the decoder backed by this server.
    /// </summary>
    /// <exception cref="KServeBackendException">
    /// Not ready, unreachable, unknown to the server (a refusal with the RemoteName / Version hint), or the metadata does
    /// not match (the message names each tensor that differs).
    /// </exception>
    public async Task<KServeDecoder> ConnectDecoderAsync(string model, DecoderDescription decoder, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(decoder);
        if (!Options.Models.TryGetValue(model, out var mapping))
        {
            throw new KServeBackendException($"{Options.Endpoint}: model '{model}' is not mapped; add {KServeOptions.SectionName}:KServe:<n>:Models:{model}.");
        }

        var name = mapping.RemoteName ?? model;
        var version = mapping.Version ?? string.Empty;
        var input = mapping.Tensors.TryGetValue(KServeStages.DecoderRoles[0], out var i) ? i : KServeStages.DecoderRoles[0];
        var output = mapping.Tensors.TryGetValue(KServeStages.DecoderRoles[1], out var o) ? o : KServeStages.DecoderRoles[1];
        var what = $"{Options.Endpoint}: model '{model}' (remote '{name}'{(version.Length > 0 ? $" version '{version}'" : string.Empty)})";
        var hint = $"check {KServeOptions.SectionName}:KServe:<n>:Models:{model}:RemoteName and :Version against the server's models";
        var ready = await CallAsync(what, "ModelReady", c => Client.ModelReadyAsync(new ModelReadyRequest { Name = name, Version = version }, Headers, Deadline(Options.ConnectTimeout), c), cancellationToken, hint).ConfigureAwait(false);
        if (!ready.Ready)
        {
            throw new KServeBackendException($"{what}: ModelReady says it is not ready; {hint}.") { NotReady = true };
        }

        var metadata = await CallAsync(what, "ModelMetadata", c => Client.ModelMetadataAsync(new ModelMetadataRequest { Name = name, Version = version }, Headers, Deadline(Options.ConnectTimeout), c), cancellationToken, hint).ConfigureAwait(false);
        var problems = new List<string>();
        foreach (var (kind, list, tensor, shape) in new[] { ("input", metadata.Inputs, input, decoder.LatentShape), ("output", metadata.Outputs, output, decoder.ImageShape) })
        {
            var theirs = list.FirstOrDefault(t => t.Name == tensor);
            var expected = OpenInferenceDatatypes.Format(shape.WithBatch(1).Select((d, i) => i == 0 ? -1L : d));
            if (theirs is null)
            {
                problems.Add($"{kind} '{tensor}': the remote model has no such {kind}; its {kind}s are {string.Join(", ", list.Select(t => $"'{t.Name}'"))}");
            }
            else if (theirs.Datatype != OpenInferenceDatatypes.Fp32)
            {
                problems.Add($"{kind} '{tensor}': datatype {theirs.Datatype}, expected {OpenInferenceDatatypes.Fp32} (this backend sends and reads FP32; serve the stage with FP32 tensors)");
            }
            else if (theirs.Shape.Count != shape.Dimensions.Count + 1 || theirs.Shape[0] != -1 || theirs.Shape.Skip(1).Zip(shape.Dimensions).Any(p => p.First != -1 && p.First != p.Second))
            {
                problems.Add($"{kind} '{tensor}': shape {OpenInferenceDatatypes.Format(theirs.Shape)}, expected {expected}");
            }
        }

        problems.AddRange(metadata.Inputs.Where(t => t.Name != input).Select(t => $"input '{t.Name}': the remote model needs it but the decoder sends only '{input}'"));
        if (problems.Count > 0)
        {
            throw new KServeBackendException($"{what}: the server's metadata does not match pipeline '{decoder.Name}''s VAE decoder: {string.Join("; ", problems)}.");
        }

        var maxBatchSize = await ReadMaxBatchSizeAsync(what, name, version, cancellationToken).ConfigureAwait(false);
        OpenInferenceLog.BackendConnected(_logger, Options.Endpoint, model, name, version);
        return new KServeDecoder(this, decoder, new RemoteStage(name, version, input, output, maxBatchSize is > 0 ? maxBatchSize : null));
    }

    /// <summary>
    /// The model's <c>max_batch_size</c> from Triton's ModelConfig extension, or null when the server does not offer it
    /// (UNIMPLEMENTED: a plain Open Inference Protocol server).
    /// </summary>
    private async Task<int?> ReadMaxBatchSizeAsync(string what, string name, string version, CancellationToken cancellationToken)
    {
        try
        {
            var config = await CallAsync(what, "ModelConfig", c => Client.ModelConfigAsync(new ModelConfigRequest { Name = name, Version = version }, Headers, Deadline(Options.ConnectTimeout), c), cancellationToken).ConfigureAwait(false);
            return config.Config?.MaxBatchSize;
        }
        catch (KServeBackendException ex) when (ex.Status == StatusCode.Unimplemented)
        {
            return null;
        }
    }

    /// <summary>
    /// Fits <paramref name="link"/>: <paramref name="repeats"/> rounds of one ServerLive and one ModelInfer of each nonzero
    /// size of <paramref name="sizes"/> addressed to <see cref="KServeBackend.ProbeModel"/>, which the server refuses
    /// after reading the whole request.
    /// </summary>
    /// <exception cref="KServeBackendException">A probe failed for a reason other than the expected refusal.</exception>
    internal async Task ProbeLinkAsync(string what, SearchOrchestrator.Links.LinkCostModel link, int repeats, IEnumerable<int> sizes, CancellationToken cancellationToken)
    {
        for (var r = 0; r < repeats; r++)
        {
            var started = Time.GetTimestamp();
            await CallAsync(what, "ServerLive", c => Client.ServerLiveAsync(new ServerLiveRequest(), Headers, Deadline(Options.ConnectTimeout), c), cancellationToken).ConfigureAwait(false);
            link.Record(new SearchOrchestrator.Links.Transfer(GrpcMessagePrefix, GrpcMessagePrefix + 2, Time.GetElapsedTime(started)));
            foreach (var size in sizes.Where(s => s > 0))
            {
                var request = new ModelInferRequest { ModelName = KServeBackend.ProbeModel };
                request.Inputs.Add(new ModelInferRequest.Types.InferInputTensor { Name = "payload", Datatype = "BYTES", Shape = { 1 } });
                request.RawInputContents.Add(Google.Protobuf.ByteString.CopyFrom(new byte[size]));
                started = Time.GetTimestamp();
                try
                {
                    await Client.ModelInferAsync(request, Headers, Deadline(Options.ConnectTimeout), cancellationToken).ResponseAsync.ConfigureAwait(false);
                }
                catch (RpcException ex) when (KServeBackend.IsProbeRefusal(ex))
                {
                    // The expected refusal, sent after the server read the whole request.
                }
                catch (RpcException ex) when (!cancellationToken.IsCancellationRequested)
                {
                    throw new KServeBackendException($"{what}: link probe of {size} bytes failed with {ex.StatusCode}: {ex.Status.Detail}", ex.StatusCode, ex);
                }

                link.Record(new SearchOrchestrator.Links.Transfer(request.CalculateSize() + GrpcMessagePrefix, GrpcMessagePrefix, Time.GetElapsedTime(started)));
            }
        }
    }

    /// <summary>Disposes the channel when the endpoint opened it.</summary>
    public void Dispose() => _ownedChannel?.Dispose();

    internal DateTime Deadline(TimeSpan timeout) => Time.GetUtcNow().UtcDateTime + timeout;

    /// <summary>
    /// One <c>ModelInfer</c> with the call deadline (<see cref="KServeEndpointOptions.CallTimeout"/>), its bytes as framed
    /// on the wire and its time recorded on <see cref="Traffic"/>.
    /// </summary>
    /// <exception cref="KServeBackendException">The call failed or timed out.</exception>
    internal async Task<(ModelInferResponse Response, LinkTrafficSample Traffic)> InferAsync(string what, ModelInferRequest request, CancellationToken cancellationToken)
    {
        var started = Time.GetTimestamp();
        var response = await CallAsync(what, "ModelInfer", c => Client.ModelInferAsync(request, Headers, Deadline(Options.CallTimeout), c), cancellationToken).ConfigureAwait(false);
        var traffic = new LinkTrafficSample(request.CalculateSize() + GrpcMessagePrefix, response.CalculateSize() + GrpcMessagePrefix, Time.GetElapsedTime(started));
        Traffic.Record(traffic.BytesSent, traffic.BytesReceived, traffic.Elapsed);
        return (response, traffic);
    }

    /// <summary>
    /// Makes one call, mapping its failure to a <see cref="KServeBackendException"/>; with <paramref name="notFoundHint"/>,
    /// a NOT_FOUND answer (Triton's for an unknown model or version) is a refusal that carries the hint.
    /// </summary>
    internal static async Task<T> CallAsync<T>(string what, string method, Func<CancellationToken, AsyncUnaryCall<T>> call, CancellationToken cancellationToken, string? notFoundHint = null)
    {
        try
        {
            return await call(cancellationToken).ResponseAsync.ConfigureAwait(false);
        }
        catch (RpcException ex) when (ex.StatusCode == StatusCode.Cancelled && cancellationToken.IsCancellationRequested)
        {
            throw new OperationCanceledException($"{what}: {method} was cancelled.", ex, cancellationToken);
        }
        catch (RpcException ex) when (ex.StatusCode == StatusCode.NotFound && notFoundHint is not null)
        {
            throw new KServeBackendException($"{what}: {method} failed with NotFound ({ex.Status.Detail}); {notFoundHint}.", ex.StatusCode, ex) { Refused = true };
        }
        catch (RpcException ex)
        {
            var hint = ex.StatusCode == StatusCode.DeadlineExceeded ? " (its deadline passed; see CallTimeout / ConnectTimeout)" : string.Empty;
            throw new KServeBackendException($"{what}: {method} failed with {ex.StatusCode}{hint}: {ex.Status.Detail}", ex.StatusCode, ex);
        }
    }
}

/// <summary>Our model as the remote server knows it: name, version, and the remote name of each tensor role.</summary>
internal sealed record RemoteModel(string Name, string Version, string Sample, string Time, string Condition, string Prediction)
{
    /// <summary>
    /// Extra trailing axes of size 1 the server declares per role beyond our shape: Triton describes a model input of
    /// shape [batch] as dims [1] with a reshape, and reports it as [-1, 1]. The bytes are the same; only the shape sent
    /// and expected back differs.
    /// </summary>
    public IReadOnlyDictionary<string, int> TrailingAxes { get; init; } = new Dictionary<string, int>();

    /// <summary>The shape to send (or expect) for <paramref name="role"/>: ours plus the server's trailing 1s.</summary>
    public long[] Shape(string role, long[] ours) => [.. ours, .. Enumerable.Repeat(1L, TrailingAxes.GetValueOrDefault(role))];

    /// <summary>The model's <c>max_batch_size</c> from the server's ModelConfig; null when the server does not offer it.</summary>
    public int? MaxBatchSize { get; init; }
}

/// <summary>Compares a server's ModelMetadata with our manifest, tensor by tensor.</summary>
internal static class KServeMetadataCheck
{
    public static List<string> Compare(ModelManifest manifest, RemoteModel remote, ModelMetadataResponse metadata, out Dictionary<string, int> trailingAxes)
    {
        var problems = new List<string>();
        trailingAxes = new Dictionary<string, int>(StringComparer.Ordinal);
        var wanted = new (string Role, string Remote, TensorSpec Ours, bool Input)[]
        {
            ("sample", remote.Sample, manifest.Inputs!["sample"], true),
            ("time", remote.Time, manifest.Inputs["time"], true),
            ("condition", remote.Condition, manifest.Inputs["condition"], true),
            ("prediction", remote.Prediction, manifest.Outputs!["prediction"], false),
        };
        foreach (var (role, name, ours, input) in wanted)
        {
            var kind = input ? "input" : "output";
            var list = input ? metadata.Inputs : metadata.Outputs;
            var theirs = list.FirstOrDefault(t => t.Name == name);
            if (theirs is null)
            {
                problems.Add($"{kind} '{name}' (our {role}): the remote model has no such {kind}; its {kind}s are {string.Join(", ", list.Select(t => $"'{t.Name}'"))}");
                continue;
            }

            var datatype = OpenInferenceDatatypes.FromManifest(ours.Dtype!);
            if (theirs.Datatype != datatype)
            {
                problems.Add($"{kind} '{name}' (our {role}): datatype {theirs.Datatype}, expected {datatype}");
            }

            if (ShapeFits(ours.Shape!, theirs.Shape) is { } extra)
            {
                trailingAxes[role] = extra;
            }
            else
            {
                problems.Add($"{kind} '{name}' (our {role}): shape {OpenInferenceDatatypes.Format(theirs.Shape)}, expected {OpenInferenceDatatypes.Format(ours.Shape!.Select(d => (long)d))} (-1 on the batch axis)");
            }
        }

        foreach (var extra in metadata.Inputs.Where(t => t.Name != remote.Sample && t.Name != remote.Time && t.Name != remote.Condition))
        {
            problems.Add($"input '{extra.Name}': the remote model needs it but no role of ours maps to it (map sample, time and condition under Tensors)");
        }

        return problems;
    }

    /// <summary>
    /// The number of trailing size-1 axes the server adds to our shape, or null when the shapes differ: the batch axis
    /// variable on both, every fixed axis of ours equal to theirs (or theirs variable), then only 1s.
    /// </summary>
    private static int? ShapeFits(int[] ours, IList<long> theirs)
    {
        if (theirs.Count < ours.Length || theirs[0] != -1)
        {
            return null;
        }

        for (var d = 1; d < ours.Length; d++)
        {
            if (theirs[d] != -1 && theirs[d] != ours[d])
            {
                return null;
            }
        }

        return theirs.Skip(ours.Length).All(d => d == 1) ? theirs.Count - ours.Length : null;
    }
}
