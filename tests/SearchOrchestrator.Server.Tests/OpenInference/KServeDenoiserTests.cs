using Google.Protobuf;
using Grpc.Core;
using Microsoft.Extensions.Time.Testing;
using SearchOrchestrator.Denoising;
using SearchOrchestrator.Onnx.Manifests;
using SearchOrchestrator.Onnx.Repository;
using SearchOrchestrator.Protos.Inference;
using SearchOrchestrator.Search;
using SearchOrchestrator.Server.OpenInference;
using SearchOrchestrator.Server.Tests.Grpc;
using SearchOrchestrator.Strategies;
using SearchOrchestrator.Verifiers;
using Xunit.Abstractions;

namespace SearchOrchestrator.Server.Tests.OpenInference;

/// <summary>The kserve backend against the real serve host's Open Inference Protocol endpoint on a loopback socket.</summary>
public sealed class KServeDenoiserTests(ServerFixture server, LocalModels local, ITestOutputHelper output) : IClassFixture<ServerFixture>, IClassFixture<LocalModels>
{
    private static KServeEndpointOptions Options(Action<KServeModelOptions>? configure = null)
    {
        var model = new KServeModelOptions();
        configure?.Invoke(model);
        return new KServeEndpointOptions { Endpoint = "http://loopback-under-test", Models = { ["counting"] = model } };
    }

    private KServeEndpoint Endpoint(KServeEndpointOptions options) => new(options, server.Channel.CreateCallInvoker());

    private static SearchRequest Request(ISearchStrategy strategy) => new()
    {
        Model = "counting",
        Condition = "6",
        Steps = 12,
        Guidance = 2,
        Eta = 0.5,
        Seed = 11,
        Strategy = strategy,
        Verifiers = ["count-verifier"],
        Candidates = 2,
    };

    public static TheoryData<string> Strategies() => ["shared_prefix", "best_of_n"];

    [Theory]
    [MemberData(nameof(Strategies))]
    public async Task Search_DenoiserOnTheKServeBackend_GivesTheLocalResultTo1e5(string strategy)
    {
        ISearchStrategy Strategy() => strategy == "best_of_n" ? new BestOfNStrategy(3) : new SharedPrefixStrategy(3, 6);
        using var endpoint = Endpoint(Options());
        var remote = await endpoint.ConnectDenoiserAsync("counting", local.Manifest("counting"));
        SearchResult expected, actual;
        await using (var engine = new SearchEngine(local.Repository))
        {
            expected = await engine.RunAsync(Request(Strategy()));
        }

        await using (var engine = new SearchEngine(new RemoteDenoisers(local.Repository, remote)))
        {
            actual = await engine.RunAsync(Request(Strategy()));
        }

        Assert.Equal(expected.Cost.Nfe, actual.Cost.Nfe);
        Assert.Equal(expected.Candidates.Select(c => c.Path), actual.Candidates.Select(c => c.Path));
        for (var c = 0; c < expected.Candidates.Count; c++)
        {
            var (e, a) = (expected.Candidates[c].Sample, actual.Candidates[c].Sample);
            Assert.Equal(e.Length, a.Length);
            Assert.All(Enumerable.Range(0, e.Length), k => Assert.True(Math.Abs(e[k] - a[k]) <= 1e-5, $"candidate {c} element {k}: {e[k]} local, {a[k]} kserve"));
            Assert.Equal(expected.Candidates[c].Score!.Value, actual.Candidates[c].Score!.Value, 5);
        }

        output.WriteLine($"{strategy}: {actual.Cost.Nfe} NFE in {endpoint.Traffic.Calls} ModelInfer calls; sent {endpoint.Traffic.BytesSent} B, received {endpoint.Traffic.BytesReceived} B, {endpoint.Traffic.Elapsed.TotalMilliseconds:0.0} ms in calls; local wall {expected.Cost.WallTime.TotalMilliseconds:0} ms, kserve wall {actual.Cost.WallTime.TotalMilliseconds:0} ms");

        // Every forward pass of the search was one ModelInfer; each moved its batch's tensors both ways.
        Assert.Equal(actual.Cost.Batches, endpoint.Traffic.Calls);
        Assert.True(endpoint.Traffic.BytesSent > actual.Cost.Nfe * 24 * 24 * 4, $"sent {endpoint.Traffic.BytesSent} bytes for {actual.Cost.Nfe} NFE");
        Assert.True(endpoint.Traffic.BytesReceived > actual.Cost.Nfe * 24 * 24 * 4, $"received {endpoint.Traffic.BytesReceived} bytes for {actual.Cost.Nfe} NFE");
    }

    [Fact]
    public async Task Create_FromTheEndpointAddress_OpensItsOwnChannelAndPredicts()
    {
        var options = Options();
        options.Endpoint = $"http://{server.Channel.Target}";
        using var endpoint = KServeEndpoint.Create(options);
        var denoiser = await endpoint.ConnectDenoiserAsync("counting", local.Manifest("counting"));
        var batch = new DenoiserBatch(2, new float[2 * 576], new[] { 999f, 1f }, new[] { 4L, 0L });
        var expected = new float[2 * 576];
        var actual = new float[2 * 576];
        await local.Repository.GetDenoiser("counting").PredictAsync(batch, expected);

        await denoiser.PredictAsync(batch, actual);

        Assert.All(Enumerable.Range(0, expected.Length), k => Assert.True(Math.Abs(expected[k] - actual[k]) <= 1e-5, $"element {k}"));
        Assert.Equal(options.Endpoint, denoiser.Traffic.Link);
    }

    [Fact]
    public async Task ConnectDenoiserAsync_RemoteShapeDiffers_IsRefusedNamingTheTensor()
    {
        using var endpoint = Endpoint(Options());
        var manifest = local.Manifest("counting");
        var bigger = manifest with
        {
            Inputs = new Dictionary<string, TensorSpec>(manifest.Inputs!) { ["sample"] = manifest.Inputs!["sample"] with { Shape = [-1, 1, 28, 28] } },
            Outputs = new Dictionary<string, TensorSpec> { ["prediction"] = manifest.Outputs!["prediction"] with { Shape = [-1, 1, 28, 28] } },
        };

        var error = await Assert.ThrowsAsync<KServeBackendException>(() => endpoint.ConnectDenoiserAsync("counting", bigger));

        Assert.Contains("input 'x' (our sample): shape [-1, 1, 24, 24], expected [-1, 1, 28, 28]", error.Message, StringComparison.Ordinal);
        Assert.Contains("output 'eps' (our prediction): shape [-1, 1, 24, 24], expected [-1, 1, 28, 28]", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ConnectDenoiserAsync_TensorMappedToAMissingName_IsRefusedNamingBothTensors()
    {
        using var endpoint = Endpoint(Options(m => m.Tensors["time"] = "timestep"));

        var error = await Assert.ThrowsAsync<KServeBackendException>(() => endpoint.ConnectDenoiserAsync("counting", local.Manifest("counting")));

        Assert.Contains("input 'timestep' (our time): the remote model has no such input; its inputs are 'x', 't', 'condition'", error.Message, StringComparison.Ordinal);
        Assert.Contains("input 't': the remote model needs it but no role of ours maps to it", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ConnectDenoiserAsync_RemoteIsAVerifier_IsRefusedNamingTheMissingTensors()
    {
        using var endpoint = Endpoint(Options(m => m.RemoteName = "count-verifier"));

        var error = await Assert.ThrowsAsync<KServeBackendException>(() => endpoint.ConnectDenoiserAsync("counting", local.Manifest("counting")));

        Assert.Contains("input 'x' (our sample): the remote model has no such input; its inputs are 'image'", error.Message, StringComparison.Ordinal);
        Assert.Contains("output 'eps' (our prediction): the remote model has no such output; its outputs are 'logits'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ConnectDenoiserAsync_RemoteModelNotServed_IsRefusedWithTheRemoteNameHint()
    {
        using var endpoint = Endpoint(Options(m => m.RemoteName = "counting-v9"));

        var error = await Assert.ThrowsAsync<KServeBackendException>(() => endpoint.ConnectDenoiserAsync("counting", local.Manifest("counting")));

        Assert.True(error.Refused);
        Assert.Contains("model 'counting' (remote 'counting-v9'): ModelReady failed with NotFound (no model named 'counting-v9' is served", error.Message, StringComparison.Ordinal);
        Assert.Contains("check Backends:KServe:<n>:Models:counting:RemoteName and :Version against the server's models.", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ConnectDenoiserAsync_ModelNotMapped_NamesTheSetting()
    {
        using var endpoint = Endpoint(new KServeEndpointOptions { Endpoint = "http://x", Models = { ["other"] = new KServeModelOptions() } });

        var error = await Assert.ThrowsAsync<KServeBackendException>(() => endpoint.ConnectDenoiserAsync("counting", local.Manifest("counting")));

        Assert.Contains("add Backends:KServe:<n>:Models:counting", error.Message, StringComparison.Ordinal);
    }

    /// <summary>The engine's models: the remote denoiser, and everything else from the local repository.</summary>
    private sealed class RemoteDenoisers(IModelProvider local, IDenoiser remote) : IModelProvider
    {
        public IDenoiser GetDenoiser(string name) => name == remote.Description.Name ? remote : local.GetDenoiser(name);

        public IVerifier GetVerifier(string name) => local.GetVerifier(name);
    }
}

/// <summary>The kserve backend's checks of the server's replies, against canned replies (no server).</summary>
public sealed class KServeDenoiserReplyTests(LocalModels local) : IClassFixture<LocalModels>
{
    private static readonly DenoiserBatch OneSample = new(1, new float[24 * 24], new[] { 10f }, new[] { 1L });

    private static ModelMetadataResponse CountingMetadata()
    {
        var metadata = new ModelMetadataResponse { Name = "counting", Versions = { "1" } };
        metadata.Inputs.Add(new ModelMetadataResponse.Types.TensorMetadata { Name = "x", Datatype = "FP32", Shape = { -1, 1, 24, 24 } });
        metadata.Inputs.Add(new ModelMetadataResponse.Types.TensorMetadata { Name = "t", Datatype = "FP32", Shape = { -1 } });
        metadata.Inputs.Add(new ModelMetadataResponse.Types.TensorMetadata { Name = "condition", Datatype = "INT64", Shape = { -1 } });
        metadata.Outputs.Add(new ModelMetadataResponse.Types.TensorMetadata { Name = "eps", Datatype = "FP32", Shape = { -1, 1, 24, 24 } });
        return metadata;
    }

    private static ModelInferResponse Reply(float[] values, long[]? shape = null, string datatype = "FP32", string name = "eps")
    {
        var reply = new ModelInferResponse { ModelName = "counting" };
        reply.Outputs.Add(new ModelInferResponse.Types.InferOutputTensor { Name = name, Datatype = datatype, Shape = { shape ?? [1, 1, 24, 24] } });
        reply.RawOutputContents.Add(ByteString.CopyFrom(System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan())));
        return reply;
    }

    private async Task<(KServeDenoiser Denoiser, CannedServer Server, FakeTimeProvider Time)> ConnectAsync(ModelInferResponse reply, ModelMetadataResponse? metadata = null)
    {
        var server = new CannedServer(metadata ?? CountingMetadata(), reply);
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 11, 24, 12, 0, 0, TimeSpan.Zero));
        var options = new KServeEndpointOptions { Endpoint = "http://triton:8001", CallTimeout = TimeSpan.FromSeconds(7), Models = { ["counting"] = new KServeModelOptions() } };
        var endpoint = new KServeEndpoint(options, server, time: time);
        return (await endpoint.ConnectDenoiserAsync("counting", local.Manifest("counting")), server, time);
    }

    [Fact]
    public async Task PredictAsync_GoodReply_CopiesThePredictionSendsRawLittleEndianAndSetsTheDeadline()
    {
        var values = Enumerable.Range(0, 576).Select(i => i * 0.5f).ToArray();
        var (denoiser, server, time) = await ConnectAsync(Reply(values));
        var output = new float[576];

        await denoiser.PredictAsync(OneSample, output);

        Assert.Equal(values, output);
        var sent = Assert.Single(server.InferRequests);
        Assert.Equal(["x", "t", "condition"], sent.Inputs.Select(i => i.Name));
        Assert.Equal([576 * 4, 4, 8], sent.RawInputContents.Select(r => r.Length));
        Assert.Equal(new byte[] { 0, 0, 0x20, 0x41 }, sent.RawInputContents[1].ToByteArray()); // 10f, little-endian
        Assert.Equal(time.GetUtcNow().UtcDateTime + TimeSpan.FromSeconds(7), server.InferDeadline);
        Assert.Equal(1, denoiser.Traffic.Calls);
        Assert.Equal(sent.CalculateSize() + 5, denoiser.Traffic.BytesSent);
        Assert.Equal(Reply(values).CalculateSize() + 5, denoiser.Traffic.BytesReceived);
    }

    [Fact]
    public async Task PredictAsync_ServerDeclaresTritonStyleTrailingAxes_SendsAndExpectsThoseShapes()
    {
        // Triton reports an ONNX input of shape [batch] configured as dims [1] + reshape [] as [-1, 1].
        var metadata = CountingMetadata();
        metadata.Inputs[1].Shape.Add(1);
        metadata.Inputs[2].Shape.Add(1);
        var (denoiser, server, _) = await ConnectAsync(Reply(new float[576]), metadata);

        await denoiser.PredictAsync(OneSample, new float[576]);

        Assert.Equal(["1,1,24,24", "1,1", "1,1"], server.InferRequests.Single().Inputs.Select(i => string.Join(',', i.Shape)));
    }

    [Fact]
    public async Task ConnectDenoiserAsync_TrailingAxisIsNotOne_IsRefused()
    {
        var metadata = CountingMetadata();
        metadata.Inputs[1].Shape.Add(2);

        var error = await Assert.ThrowsAsync<KServeBackendException>(() => ConnectAsync(Reply(new float[576]), metadata));

        Assert.Contains("input 't' (our time): shape [-1, 2], expected [-1] (-1 on the batch axis)", error.Message, StringComparison.Ordinal);
    }

    public static TheoryData<string, string> BadReplies() => new()
    {
        { "nan", "ModelInfer returned NaN at element 3 of output 'eps'" },
        { "shape", "output 'eps' has shape [1, 1, 24, 23], expected [1, 1, 24, 24]" },
        { "bytes", "output 'eps' has 2300 bytes, expected 2304" },
        { "dtype", "output 'eps' has datatype FP16, expected FP32" },
        { "name", "the reply has no output 'eps' (it has 'out')" },
    };

    [Theory]
    [MemberData(nameof(BadReplies))]
    public async Task PredictAsync_BadReply_ThrowsNamingWhatIsWrong(string defect, string message)
    {
        var values = new float[576];
        var reply = defect switch
        {
            "nan" => Reply([0, 0, 0, float.NaN, .. new float[572]]),
            "shape" => Reply(values, [1, 1, 24, 23]),
            "bytes" => Reply(new float[575]),
            "dtype" => Reply(values, datatype: "FP16"),
            _ => Reply(values, name: "out"),
        };
        var (denoiser, _, _) = await ConnectAsync(reply);

        var error = await Assert.ThrowsAsync<KServeBackendException>(() => denoiser.PredictAsync(OneSample, new float[576]));

        Assert.Contains("http://triton:8001: model 'counting' (remote 'counting')", error.Message, StringComparison.Ordinal);
        Assert.Contains(message, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ConnectDenoiserAsync_RemoteDatatypeDiffers_IsRefusedNamingTheTensor()
    {
        var metadata = CountingMetadata();
        metadata.Inputs[2].Datatype = "INT32";

        var error = await Assert.ThrowsAsync<KServeBackendException>(() => ConnectAsync(Reply(new float[576]), metadata));

        Assert.Contains("input 'condition' (our condition): datatype INT32, expected INT64", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task PredictAsync_ServerFails_ThrowsWithTheStatus()
    {
        var (denoiser, server, _) = await ConnectAsync(Reply(new float[576]));
        server.InferStatus = new Status(StatusCode.DeadlineExceeded, "too slow");

        var error = await Assert.ThrowsAsync<KServeBackendException>(() => denoiser.PredictAsync(OneSample, new float[576]));

        Assert.Equal(StatusCode.DeadlineExceeded, error.Status);
        Assert.Contains("ModelInfer failed with DeadlineExceeded (its deadline passed; see CallTimeout / ConnectTimeout): too slow", error.Message, StringComparison.Ordinal);
    }

    /// <summary>A server that is ready, reports <c>metadata</c>, and answers every ModelInfer with <c>reply</c>.</summary>
    private sealed class CannedServer(ModelMetadataResponse metadata, ModelInferResponse reply) : CallInvoker
    {
        public List<ModelInferRequest> InferRequests { get; } = [];

        public DateTime? InferDeadline { get; private set; }

        public Status InferStatus { get; set; } = Status.DefaultSuccess;

        public override AsyncUnaryCall<TResponse> AsyncUnaryCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options, TRequest request)
        {
            object response = request switch
            {
                ServerReadyRequest => new ServerReadyResponse { Ready = true },
                ModelReadyRequest => new ModelReadyResponse { Ready = true },
                ModelMetadataRequest => metadata,
                ModelConfigRequest => new ModelConfigResponse { Config = new ModelConfig { MaxBatchSize = 64 } },
                ModelInferRequest infer => Infer(infer, options),
                _ => throw new NotSupportedException(method.FullName),
            };
            var task = InferStatus.StatusCode == StatusCode.OK || request is not ModelInferRequest
                ? Task.FromResult((TResponse)response)
                : Task.FromException<TResponse>(new RpcException(InferStatus));
            return new AsyncUnaryCall<TResponse>(task, Task.FromResult(new Metadata()), () => Status.DefaultSuccess, () => [], () => { });
        }

        private ModelInferResponse Infer(ModelInferRequest request, CallOptions options)
        {
            InferRequests.Add(request);
            InferDeadline = options.Deadline;
            return reply;
        }

        public override TResponse BlockingUnaryCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options, TRequest request) => throw new NotSupportedException();

        public override AsyncServerStreamingCall<TResponse> AsyncServerStreamingCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options, TRequest request) => throw new NotSupportedException();

        public override AsyncClientStreamingCall<TRequest, TResponse> AsyncClientStreamingCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options) => throw new NotSupportedException();

        public override AsyncDuplexStreamingCall<TRequest, TResponse> AsyncDuplexStreamingCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options) => throw new NotSupportedException();
    }
}
