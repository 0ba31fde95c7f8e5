using Google.Protobuf;
using SearchOrchestrator.Denoising;
using SearchOrchestrator.Protos.Inference;
using SearchOrchestrator.Server.Internal;

namespace SearchOrchestrator.Server.OpenInference;

/// <summary>
/// A denoiser backend on an Open Inference Protocol server (Triton, OpenVINO Model Server, KServe, another
/// SearchOrchestrator). Stateless: every forward pass sends its tensors as <c>raw_input_contents</c> (little-endian)
/// in one <c>ModelInfer</c> with a deadline, checks the reply's tensor (name, datatype, shape, byte count, finite
/// values) and records the bytes and time on the endpoint's <see cref="LinkTraffic"/>. Get one from
/// <see cref="KServeEndpoint.ConnectDenoiserAsync"/>, which has checked the remote model's metadata.
/// </summary>
public sealed class KServeDenoiser : IDenoiser
{
    private readonly KServeEndpoint _endpoint;
    private readonly RemoteModel _remote;
    private readonly string _what;

    internal KServeDenoiser(KServeEndpoint endpoint, DenoiserDescription description, RemoteModel remote)
    {
        _endpoint = endpoint;
        _remote = remote;
        Description = description;
        _what = $"{endpoint.Options.Endpoint}: model '{description.Name}' (remote '{remote.Name}')";
    }

    /// <inheritdoc />
    public DenoiserDescription Description { get; }

    /// <summary>Our model as the server knows it (name, version, tensor names, its max_batch_size if it said).</summary>
    internal RemoteModel Remote => _remote;

    /// <summary>The link this backend's tensors travel over.</summary>
    public LinkTraffic Traffic => _endpoint.Traffic;

    /// <inheritdoc />
    /// <exception cref="KServeBackendException">The call failed or timed out, or the reply was malformed or not finite.</exception>
    public Task PredictAsync(DenoiserBatch batch, Memory<float> output, CancellationToken cancellationToken = default) =>
        PredictMeasuredAsync(batch, output, cancellationToken);

    /// <summary><see cref="PredictAsync"/>, returning the call's traffic (also recorded on <see cref="Traffic"/>).</summary>
    internal async Task<LinkTrafficSample> PredictMeasuredAsync(DenoiserBatch batch, Memory<float> output, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(batch);
        cancellationToken.ThrowIfCancellationRequested();
        var n = batch.Count;
        var elements = Description.SampleShape.ElementCount;
        if (n < 1 || batch.Samples.Length < n * elements || batch.Times.Length < n || batch.Conditions.Length < n || output.Length < n * elements)
        {
            throw new ArgumentException($"A batch of {n} for '{Description.Name}' needs {n * elements} sample values, {n} times, {n} conditions and room for {n * elements} outputs.", nameof(batch));
        }

        var shape = Description.SampleShape.WithBatch(n);
        var request = new ModelInferRequest { ModelName = _remote.Name, ModelVersion = _remote.Version };
        request.Inputs.Add(new ModelInferRequest.Types.InferInputTensor { Name = _remote.Sample, Datatype = OpenInferenceDatatypes.Fp32, Shape = { _remote.Shape("sample", shape) } });
        request.Inputs.Add(new ModelInferRequest.Types.InferInputTensor { Name = _remote.Time, Datatype = OpenInferenceDatatypes.Fp32, Shape = { _remote.Shape("time", [n]) } });
        request.Inputs.Add(new ModelInferRequest.Types.InferInputTensor { Name = _remote.Condition, Datatype = OpenInferenceDatatypes.Int64, Shape = { _remote.Shape("condition", [n]) } });
        request.Outputs.Add(new ModelInferRequest.Types.InferRequestedOutputTensor { Name = _remote.Prediction });
        request.RawInputContents.Add(TensorCodec.Encode<float>(batch.Samples.Span[..(n * elements)]));
        request.RawInputContents.Add(TensorCodec.Encode<float>(batch.Times.Span[..n]));
        request.RawInputContents.Add(TensorCodec.Encode<long>(batch.Conditions.Span[..n]));

        var (response, traffic) = await _endpoint.InferAsync(_what, request, cancellationToken).ConfigureAwait(false);

        var prediction = ReadPrediction(response, _remote.Shape("prediction", shape));
        var bad = TensorCodec.FirstNonFinite(prediction);
        if (bad >= 0)
        {
            throw new KServeBackendException($"{_what}: ModelInfer returned {prediction[bad]} at element {bad} of output '{_remote.Prediction}'; a prediction must be finite.");
        }

        prediction.CopyTo(output.Span);
        return traffic;
    }

    private float[] ReadPrediction(ModelInferResponse response, long[] shape) => KServeReplies.ReadFp32(response, _remote.Prediction, shape, Malformed);

    private KServeBackendException Malformed(string problem) => new($"{_what}: malformed ModelInfer reply: {problem}.");
}

/// <summary>Reads FP32 output tensors from <c>ModelInfer</c> replies, checking name, datatype, shape and size.</summary>
internal static class KServeReplies
{
    /// <summary>The values of output <paramref name="name"/>, of <paramref name="shape"/>, from <c>raw_output_contents</c> or <c>contents.fp32_contents</c>.</summary>
    public static float[] ReadFp32(ModelInferResponse response, string name, long[] shape, Func<string, KServeBackendException> malformed)
    {
        var index = -1;
        for (var i = 0; i < response.Outputs.Count; i++)
        {
            if (response.Outputs[i].Name == name)
            {
                index = i;
            }
        }

        if (index < 0)
        {
            throw malformed($"the reply has no output '{name}' (it has {string.Join(", ", response.Outputs.Select(o => $"'{o.Name}'"))})");
        }

        var tensor = response.Outputs[index];
        if (tensor.Datatype != OpenInferenceDatatypes.Fp32)
        {
            throw malformed($"output '{tensor.Name}' has datatype {tensor.Datatype}, expected {OpenInferenceDatatypes.Fp32}");
        }

        if (!tensor.Shape.SequenceEqual(shape))
        {
            throw malformed($"output '{tensor.Name}' has shape {OpenInferenceDatatypes.Format(tensor.Shape)}, expected {OpenInferenceDatatypes.Format(shape)}");
        }

        var elements = checked((int)shape.Aggregate(1L, (a, b) => a * b));
        if (response.RawOutputContents.Count > 0)
        {
            if (response.RawOutputContents.Count != response.Outputs.Count)
            {
                throw malformed($"raw_output_contents has {response.RawOutputContents.Count} entries for {response.Outputs.Count} outputs");
            }

            ByteString raw = response.RawOutputContents[index];
            if (raw.Length != elements * sizeof(float))
            {
                throw malformed($"output '{tensor.Name}' has {raw.Length} bytes, expected {elements * sizeof(float)} ({elements} FP32 elements)");
            }

            return TensorCodec.Decode<float>(raw.Span)!;
        }

        var values = tensor.Contents?.Fp32Contents;
        if (values is null || values.Count != elements)
        {
            throw malformed($"output '{tensor.Name}' has {values?.Count ?? 0} values in contents.fp32_contents and no raw_output_contents, expected {elements}");
        }

        return [.. values];
    }
}
