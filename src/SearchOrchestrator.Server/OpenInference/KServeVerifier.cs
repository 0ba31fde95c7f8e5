using System.Buffers.Binary;
using System.Text;
using Google.Protobuf;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using SearchOrchestrator.Links;
using SearchOrchestrator.Onnx.Runtime;
using SearchOrchestrator.Protos.Inference;
using SearchOrchestrator.Server.Internal;
using SearchOrchestrator.Verifiers;
using SearchOrchestrator.Workers;
using TensorMetadata = SearchOrchestrator.Protos.Inference.ModelMetadataResponse.Types.TensorMetadata;

namespace SearchOrchestrator.Server.OpenInference;

/// <summary>
/// A verifier of kind <c>kserve</c>: each batch is one <c>ModelInfer</c> (samples FP32 [B, ...shape], conditions BYTES
/// [B] — a pipeline's or text model's prompt —, each sample's model time FP32 [B] when <c>Tensors:Time</c> is set, and
/// each sample's decoded text BYTES [B] when <c>Tensors:Text</c> is set) with a deadline, on a server whose
/// ModelReady and ModelMetadata were checked against the configured tensors and whose link was measured when it joined
/// (again on the next call after a failure); its output row becomes a score by the configured rule. What it moves is
/// recorded on <see cref="Traffic"/> and <see cref="Link"/>, and returned per batch for the searches' cost accounts. A
/// failed or timed-out call is a <see cref="NoBackendException"/> naming the server and model (and the timeout); the
/// verifier queue adds the verifier's name, and the searches that use it fail with UNAVAILABLE or, where the request
/// allows, leave it out (nothing else is affected).
/// </summary>
public sealed class KServeVerifier : IRemoteVerifier, IDisposable
{
    private readonly KServeVerifierOptions _options;
    private readonly KServeEndpoint _endpoint;
    private readonly VerifierScoring _scoring;
    private readonly ILogger _logger;
    private readonly SemaphoreSlim _joining = new(1, 1);
    private readonly string _what;
    private readonly WorkerOptions _probe;
    private volatile TensorMetadata? _sample;

    /// <summary>Creates the verifier; it joins (checks the server, measures the link) on <see cref="JoinAsync"/> or its first batch.</summary>
    /// <param name="options">The verifier's settings.</param>
    /// <param name="time">The clock calls are timed with.</param>
    /// <param name="logger">Where joins are logged.</param>
    /// <param name="probe">How the link is probed when it joins (<see cref="WorkerOptions.ProbeSizes"/>, <see cref="WorkerOptions.ProbeRepeats"/>), as for kserve backends.</param>
    public KServeVerifier(KServeVerifierOptions options, TimeProvider? time = null, ILogger? logger = null, WorkerOptions? probe = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options;
        _probe = probe ?? new WorkerOptions();
        Link = new LinkCostModel(options.Endpoint);
        _logger = logger ?? NullLogger.Instance;
        _endpoint = KServeEndpoint.Create(options.ToEndpointOptions(), time: time, logger: _logger);
        _scoring = new VerifierScoring(options.Name, options.Scoring);
        _what = $"{options.Endpoint} (remote model '{options.RemoteName}'{(options.Version is { Length: > 0 } v ? $" version '{v}'" : string.Empty)})";
    }

    /// <inheritdoc />
    public string Name => _options.Name;

    /// <summary>The server's address.</summary>
    public string Endpoint => _options.Endpoint;

    /// <summary>Calls, bytes each way and time of every <c>ModelInfer</c> this verifier made.</summary>
    public LinkTraffic Traffic => _endpoint.Traffic;

    /// <inheritdoc />
    public string Kind => VerifierKinds.KServe;

    /// <summary>The link to the server: α + β·bytes fitted from the probes taken when it joined, and the totals of every call.</summary>
    public LinkCostModel Link { get; }

    /// <inheritdoc />
    public IReadOnlyList<LinkCostModel> Links => [Link];

    /// <summary>True once the server's metadata was checked and no call has failed since.</summary>
    public bool IsJoined => _sample is not null;

    /// <summary>
    /// Checks ModelReady and ModelMetadata against the configured tensors: the sample input FP32 with a variable batch
    /// axis, the condition input BYTES [-1], the time input FP32 [-1] when configured, the output FP32 [-1] or
    /// [-1, width], no other input the server needs; then measures the link.
    /// </summary>
    /// <exception cref="NoBackendException">The server is unreachable or not ready, or its metadata does not match (the message says which tensor).</exception>
    public async Task JoinAsync(CancellationToken cancellationToken = default)
    {
        await _joining.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_sample is not null)
            {
                return;
            }

            var hint = $"check {Setting("Model")} and {Setting("Version")} against the server's models";
            var name = _options.RemoteName;
            var version = _options.Version ?? string.Empty;
            var ready = await Call("ModelReady", c => _endpoint.Client.ModelReadyAsync(new ModelReadyRequest { Name = name, Version = version }, _endpoint.Headers, _endpoint.Deadline(_options.ConnectTimeout), c), cancellationToken, hint).ConfigureAwait(false);
            if (!ready.Ready)
            {
                throw new NoBackendException($"{_what}: ModelReady says it is not ready.");
            }

            var metadata = await Call("ModelMetadata", c => _endpoint.Client.ModelMetadataAsync(new ModelMetadataRequest { Name = name, Version = version }, _endpoint.Headers, _endpoint.Deadline(_options.ConnectTimeout), c), cancellationToken, hint).ConfigureAwait(false);
            var problems = new List<string>();
            var sample = Expect(metadata.Inputs, "input", _options.Tensors.Sample, "Sample", OpenInferenceDatatypes.Fp32, problems);
            var condition = Expect(metadata.Inputs, "input", _options.Tensors.Condition, "Condition", "BYTES", problems);
            var times = _options.Tensors.Time is { Length: > 0 } timeInput ? Expect(metadata.Inputs, "input", timeInput, "Time", OpenInferenceDatatypes.Fp32, problems) : null;
            if (times is not null && times.Shape.Count != 1)
            {
                problems.Add($"input '{times.Name}' ({Setting("Tensors:Time")}): shape {OpenInferenceDatatypes.Format(times.Shape)}, expected [-1] (one time per sample)");
            }
            var texts = _options.Tensors.Text is { Length: > 0 } textInput ? Expect(metadata.Inputs, "input", textInput, "Text", "BYTES", problems) : null;
            if (texts is not null && texts.Shape.Count != 1)
            {
                problems.Add($"input '{texts.Name}' ({Setting("Tensors:Text")}): shape {OpenInferenceDatatypes.Format(texts.Shape)}, expected [-1] (one string per sample)");
            }

            var output = Expect(metadata.Outputs, "output", _options.Tensors.Output, "Output", OpenInferenceDatatypes.Fp32, problems);
            if (condition is not null && condition.Shape.Count != 1)
            {
                problems.Add($"input '{condition.Name}' ({Setting("Tensors:Condition")}): shape {OpenInferenceDatatypes.Format(condition.Shape)}, expected [-1] (one string per sample)");
            }

            if (output is not null && output.Shape.Count is not (1 or 2))
            {
                problems.Add($"output '{output.Name}' ({Setting("Tensors:Output")}): shape {OpenInferenceDatatypes.Format(output.Shape)}, expected [-1] or [-1, width]");
            }

            foreach (var extra in metadata.Inputs.Where(t => t.Name != _options.Tensors.Sample && t.Name != _options.Tensors.Condition && t.Name != _options.Tensors.Time && t.Name != _options.Tensors.Text))
            {
                problems.Add($"input '{extra.Name}': the remote model needs it but {Setting("Tensors")} maps only Sample, Condition and (when set) Time and Text");
            }

            if (problems.Count > 0)
            {
                throw new NoBackendException($"{_what}: the server's metadata does not match {VerifierSection}: {string.Join("; ", problems)}.");
            }

            await Call("link probe", async c =>
            {
                await _endpoint.ProbeLinkAsync(_what, Link, _probe.ProbeRepeats, _probe.ProbeSizes, c).ConfigureAwait(false);
                return true;
            }, cancellationToken, ("ConnectTimeout", _options.ConnectTimeout)).ConfigureAwait(false);
            _sample = sample;
            var fit = Link.Fit;
            OpenInferenceLog.VerifierJoined(_logger, Name, Endpoint, name, version, fit.Latency.TotalMilliseconds, fit.BytesPerSecond / 1e6);
        }
        finally
        {
            _joining.Release();
        }
    }

    /// <inheritdoc />
    /// <exception cref="NoBackendException">The service failed, timed out or answered something unusable; the message names the server and model.</exception>
    public async Task<float[]> ScoreAsync(VerifierBatch batch, CancellationToken cancellationToken = default) =>
        (await ScoreRemotelyAsync(batch, cancellationToken).ConfigureAwait(false)).Scores;

    /// <inheritdoc />
    /// <exception cref="NoBackendException">The service failed, timed out or answered something unusable; the message names the server and model (and the timeout that passed).</exception>
    public async Task<(float[] Scores, Transfer Transfer)> ScoreRemotelyAsync(VerifierBatch batch, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(batch);
        _scoring.CheckConditions(batch.Conditions);
        await JoinAsync(cancellationToken).ConfigureAwait(false);
        var sample = _sample!;
        var n = batch.Count;
        var shape = batch.Shape.WithBatch(n);
        if (sample.Shape.Count != shape.Length || Enumerable.Range(1, shape.Length - 1).Any(d => sample.Shape[d] != -1 && sample.Shape[d] != shape[d]))
        {
            throw new InvalidRequestException("verifiers", $"{_what} scores samples of shape {OpenInferenceDatatypes.Format(sample.Shape)}; this search's samples are {batch.Shape}.");
        }

        var request = new ModelInferRequest { ModelName = _options.RemoteName, ModelVersion = _options.Version ?? string.Empty };
        request.Inputs.Add(new ModelInferRequest.Types.InferInputTensor { Name = _options.Tensors.Sample, Datatype = OpenInferenceDatatypes.Fp32, Shape = { shape } });
        request.Inputs.Add(new ModelInferRequest.Types.InferInputTensor { Name = _options.Tensors.Condition, Datatype = "BYTES", Shape = { n } });
        request.Outputs.Add(new ModelInferRequest.Types.InferRequestedOutputTensor { Name = _options.Tensors.Output });
        request.RawInputContents.Add(TensorCodec.Encode<float>(batch.Samples.Span[..(n * batch.Shape.ElementCount)]));
        request.RawInputContents.Add(EncodeBytes(batch.Conditions));
        if (_options.Tensors.Time is { Length: > 0 } time)
        {
            if (batch.Times.Length != n)
            {
                throw new InvalidRequestException("verifiers", $"verifier '{Name}' needs each sample's time ({Setting("Tensors:Time")}), but these samples come without one (a worker relays samples without their times).");
            }

            request.Inputs.Add(new ModelInferRequest.Types.InferInputTensor { Name = time, Datatype = OpenInferenceDatatypes.Fp32, Shape = { n } });
            request.RawInputContents.Add(TensorCodec.Encode<float>(batch.Times.Span));
        }

        if (_options.Tensors.Text is { Length: > 0 } text)
        {
            if (batch.Texts is not { } texts || texts.Count != n)
            {
                throw new InvalidRequestException("verifiers", $"verifier '{Name}' scores each sample's decoded text ({Setting("Tensors:Text")}), but this search's samples have none (only a text model's samples decode to text).");
            }

            request.Inputs.Add(new ModelInferRequest.Types.InferInputTensor { Name = text, Datatype = "BYTES", Shape = { n } });
            request.RawInputContents.Add(EncodeBytes(texts));
        }

        var clock = _endpoint.Time;
        var started = clock.GetTimestamp();
        ModelInferResponse response;
        try
        {
            response = await Call("ModelInfer", c => _endpoint.Client.ModelInferAsync(request, _endpoint.Headers, _endpoint.Deadline(_options.CallTimeout), c), cancellationToken, timeout: ("CallTimeout", _options.CallTimeout)).ConfigureAwait(false);
        }
        catch (NoBackendException)
        {
            _sample = null; // join again (ready, metadata, link) before the next batch
            throw;
        }

        var transfer = new Transfer(request.CalculateSize() + KServeEndpoint.GrpcMessagePrefix, response.CalculateSize() + KServeEndpoint.GrpcMessagePrefix, clock.GetElapsedTime(started));
        _endpoint.Traffic.Record(transfer.BytesSent, transfer.BytesReceived, transfer.Time);
        Link.RecordUsage(transfer);
        var (values, width) = ReadOutput(response, n);
        if (_scoring.WidthProblem(width) is { } problem)
        {
            throw Malformed(problem);
        }

        var bad = TensorCodec.FirstNonFinite(values);
        if (bad >= 0)
        {
            throw Malformed($"output '{_options.Tensors.Output}' has {values[bad]} at element {bad}; a score must be finite");
        }

        return (_scoring.Score(values, width, batch.Conditions), transfer);
    }

    /// <summary>Closes the channel.</summary>
    public void Dispose()
    {
        _endpoint.Dispose();
        _joining.Dispose();
    }

    private static string VerifierSection => $"{VerifierPluginOptions.SectionName}:Remote";

    private string Setting(string key) => $"{VerifierSection}:<n>:{key} of '{Name}'";

    /// <summary>Strings as the protocol's raw BYTES contents: each a 4-byte little-endian length, then its UTF-8 bytes.</summary>
    private static ByteString EncodeBytes(IReadOnlyList<string> values)
    {
        var encoded = values.Select(Encoding.UTF8.GetBytes).ToArray();
        var bytes = new byte[encoded.Sum(e => 4 + e.Length)];
        var offset = 0;
        foreach (var e in encoded)
        {
            BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(offset), e.Length);
            e.CopyTo(bytes, offset + 4);
            offset += 4 + e.Length;
        }

        return UnsafeByteOperations.UnsafeWrap(bytes);
    }

    private TensorMetadata? Expect(IEnumerable<TensorMetadata> tensors, string kind, string name, string role, string datatype, List<string> problems)
    {
        var list = tensors.ToList();
        var tensor = list.FirstOrDefault(t => t.Name == name);
        if (tensor is null)
        {
            problems.Add($"{kind} '{name}' ({Setting($"Tensors:{role}")}): the remote model has no such {kind}; its {kind}s are {string.Join(", ", list.Select(t => $"'{t.Name}'"))}");
        }
        else if (tensor.Datatype != datatype)
        {
            problems.Add($"{kind} '{name}' ({Setting($"Tensors:{role}")}): datatype {tensor.Datatype}, expected {datatype}");
        }
        else if (tensor.Shape.Count == 0 || tensor.Shape[0] != -1)
        {
            problems.Add($"{kind} '{name}' ({Setting($"Tensors:{role}")}): shape {OpenInferenceDatatypes.Format(tensor.Shape)}, expected a variable batch axis first (-1)");
        }
        else
        {
            return tensor;
        }

        return null;
    }

    private (float[] Values, int Width) ReadOutput(ModelInferResponse response, int n)
    {
        var index = response.Outputs.Select(o => o.Name).ToList().IndexOf(_options.Tensors.Output);
        if (index < 0)
        {
            throw Malformed($"the reply has no output '{_options.Tensors.Output}' (it has {string.Join(", ", response.Outputs.Select(o => $"'{o.Name}'"))})");
        }

        var tensor = response.Outputs[index];
        if (tensor.Datatype != OpenInferenceDatatypes.Fp32 || tensor.Shape.Count is not (1 or 2) || tensor.Shape[0] != n || (tensor.Shape.Count == 2 && tensor.Shape[1] < 1))
        {
            throw Malformed($"output '{tensor.Name}' is {tensor.Datatype} {OpenInferenceDatatypes.Format(tensor.Shape)}, expected FP32 [{n}] or [{n}, width]");
        }

        var width = tensor.Shape.Count == 2 ? checked((int)tensor.Shape[1]) : 1;
        float[]? values = response.RawOutputContents.Count > 0
            ? response.RawOutputContents.Count == response.Outputs.Count ? TensorCodec.Decode<float>(response.RawOutputContents[index].Span) : null
            : [.. tensor.Contents?.Fp32Contents ?? []];
        if (values is null || values.Length != n * width)
        {
            throw Malformed($"output '{tensor.Name}' does not hold {n * width} FP32 values");
        }

        return (values, width);
    }

    private NoBackendException Malformed(string problem) => new($"{_what}: malformed ModelInfer reply: {problem}.");

    private Task<T> Call<T>(string method, Func<CancellationToken, global::Grpc.Core.AsyncUnaryCall<T>> call, CancellationToken cancellationToken, string? notFoundHint = null, (string Setting, TimeSpan Value)? timeout = null) =>
        Call(method, c => KServeEndpoint.CallAsync(_what, method, call, c, notFoundHint), cancellationToken, timeout ?? ("ConnectTimeout", _options.ConnectTimeout));

    /// <summary>Runs <paramref name="call"/>, its failure a <see cref="NoBackendException"/>; a passed deadline names the verifier's timeout setting and value.</summary>
    private async Task<T> Call<T>(string method, Func<CancellationToken, Task<T>> call, CancellationToken cancellationToken, (string Setting, TimeSpan Value) timeout)
    {
        try
        {
            return await call(cancellationToken).ConfigureAwait(false);
        }
        catch (KServeBackendException ex) when (ex.Status == global::Grpc.Core.StatusCode.DeadlineExceeded)
        {
            throw new NoBackendException($"{_what}: {method} did not answer within {Setting(timeout.Setting)} ({timeout.Value.TotalMilliseconds.ToString(System.Globalization.CultureInfo.InvariantCulture)} ms); raise it if the model is slow.");
        }
        catch (KServeBackendException ex)
        {
            throw new NoBackendException(ex.Message);
        }
    }
}
