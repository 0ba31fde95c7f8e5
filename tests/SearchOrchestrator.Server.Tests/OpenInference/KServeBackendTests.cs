using Google.Protobuf;
using Grpc.Core;
using Microsoft.Extensions.Time.Testing;
using SearchOrchestrator.Processes;
using SearchOrchestrator.Protos.Inference;
using SearchOrchestrator.Randomness;
using SearchOrchestrator.Scheduling;
using SearchOrchestrator.Server.OpenInference;
using SearchOrchestrator.Workers;

namespace SearchOrchestrator.Server.Tests.OpenInference;

/// <summary>
/// The kserve placement backend against a scripted server whose calls take controlled time: the link fit from probes,
/// the split of a pass into transfer and compute, and failures mapped to worker faults with rotation.
/// </summary>
public sealed class KServeBackendTests(LocalModels local) : IClassFixture<LocalModels>
{
    private const int Elements = 24 * 24;
    private static readonly TimeSpan Alpha = TimeSpan.FromMilliseconds(2);
    private const double Beta = 1e-8; // 100 MB/s
    private static readonly TimeSpan ComputeFixed = TimeSpan.FromMilliseconds(3);
    private static readonly TimeSpan ComputePerRow = TimeSpan.FromMilliseconds(0.5);

    private static WorkerOptions Pool => new() { Mode = WorkerModes.Stateless, UseLocal = false, ProbeSizes = [0, 65536, 262144, 1048576], ProbeRepeats = 2, MaxConsecutiveFailures = 2 };

    private async Task<(KServeBackend Backend, ScriptedServer Server)> ConnectAsync(Action<ScriptedServer>? script = null, int maxBatchSize = 32)
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 11, 24, 12, 0, 0, TimeSpan.Zero));
        var server = new ScriptedServer(time);
        script?.Invoke(server);
        var options = new KServeEndpointOptions { Endpoint = "http://triton:8001", MaxBatchSize = maxBatchSize, Models = { ["counting"] = new KServeModelOptions() } };
        return (await KServeBackend.ConnectAsync(options, local.Manifest, Pool, time, callInvoker: server), server);
    }

    private StepRequest Step(float[] state) => new()
    {
        State = state,
        Prediction = new float[Elements],
        StepIndex = 3,
        Timestep = 500,
        AlphaBarFrom = 0.5,
        AlphaBarTo = 0.6,
        Condition = 1,
        Guidance = 1,
        Sampler = local.Repository.GetDenoiser("counting").Description.Process.CreateSampler(SamplerSettings.Ddim(0)),
        Key = new RngKey(42),
    };

    private static TrajectorySettings Settings => new("counting", 10, SamplerSettings.Ddim(0), null, 1, 1);

    [Fact]
    public async Task ConnectAsync_ServerWithoutTimings_FitsTheLinkFromProbesAndComputeFromTheRest()
    {
        var (backend, server) = await ConnectAsync();
        await using var owned = backend;

        var fit = backend.Link.Fit;
        Assert.Equal(Alpha.TotalMilliseconds, fit.Latency.TotalMilliseconds, 0.01);
        Assert.Equal(Beta, fit.SecondsPerByte, Beta * 0.01);
        Assert.Equal(4, fit.Samples); // ServerLive and three probe sizes
        // Passes of 1 and 8 rows, each taking link + compute: the compute left after the link's share is the injected line.
        Assert.Equal((ComputeFixed + ComputePerRow).TotalMilliseconds, backend.Compute.Predict(1).TotalMilliseconds, 0.01);
        Assert.Equal((ComputeFixed + (8 * ComputePerRow)).TotalMilliseconds, backend.Compute.Predict(8).TotalMilliseconds, 0.01);
        Assert.All(server.ProbeRequests, p => Assert.Equal(KServeBackend.ProbeModel, p));
    }

    [Fact]
    public async Task StepAsync_GoodReply_ReportsTheStepsShareOfThePassTraffic()
    {
        var (backend, server) = await ConnectAsync();
        await using var owned = backend;

        var outcome = await backend.StepAsync(Step(new float[Elements]), Settings);

        var bytes = outcome.Transfer.BytesSent + outcome.Transfer.BytesReceived;
        Assert.Equal(server.LastInferBytes, bytes);
        Assert.Equal((Alpha + TimeSpan.FromSeconds(Beta * bytes)).TotalMilliseconds, outcome.Transfer.Time.TotalMilliseconds, 0.01);
        Assert.True(outcome.Transfer.BytesSent > Elements * sizeof(float));
    }

    [Fact]
    public async Task StepAsync_NaNReply_IsBadDataLeavesTheStateAndLeavesRotationAfterRepeatedFailures()
    {
        var (backend, server) = await ConnectAsync();
        await using var owned = backend;
        server.NaN = true;
        var state = Enumerable.Range(0, Elements).Select(i => (float)i).ToArray();

        var first = await Assert.ThrowsAsync<WorkerDataException>(() => backend.StepAsync(Step(state), Settings));
        var inRotationAfterOne = backend.IsAvailable;
        await Assert.ThrowsAsync<WorkerDataException>(() => backend.StepAsync(Step(state), Settings));
        var inRotationAfterTwo = backend.IsAvailable;
        server.NaN = false;
        var healthy = await backend.CheckHealthAsync();

        Assert.Contains("http://triton:8001", first.Message, StringComparison.Ordinal);
        Assert.Contains("NaN", first.Message, StringComparison.Ordinal);
        Assert.Equal(Enumerable.Range(0, Elements).Select(i => (float)i), state); // untouched: the step reruns elsewhere from it
        Assert.True(inRotationAfterOne);
        Assert.False(inRotationAfterTwo);
        Assert.True(healthy);
        Assert.True(backend.IsAvailable);
    }

    [Fact]
    public async Task StepAsync_ServerUnreachable_IsUnavailableAndLeavesRotationUntilServerReady()
    {
        var (backend, server) = await ConnectAsync();
        await using var owned = backend;
        server.Down = true;

        var failure = await Assert.ThrowsAsync<WorkerUnavailableException>(() => backend.StepAsync(Step(new float[Elements]), Settings));
        var outAtOnce = !backend.IsAvailable;
        var whileDown = await backend.CheckHealthAsync();
        server.Down = false;
        server.ModelIsReady = false;
        var whileNotReady = await backend.CheckHealthAsync();
        server.ModelIsReady = true;
        var whenReady = await backend.CheckHealthAsync();

        Assert.Equal("http://triton:8001", failure.Worker);
        Assert.True(outAtOnce);
        Assert.False(whileDown);
        Assert.False(whileNotReady);
        Assert.True(whenReady);
        Assert.True(backend.IsAvailable);
    }

    [Fact]
    public async Task StepAsync_AfterTheBackendLeftThePool_IsUnavailable()
    {
        var (backend, _) = await ConnectAsync();
        await backend.DisposeAsync();

        var failure = await Assert.ThrowsAsync<WorkerUnavailableException>(() => backend.StepAsync(Step(new float[Elements]), Settings));

        Assert.False(backend.IsAvailable);
        Assert.Contains("left the pool", failure.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task StepAsync_ModelItDoesNotRun_IsUnavailableNamingTheModels()
    {
        var (backend, _) = await ConnectAsync();
        await using var owned = backend;

        var failure = await Assert.ThrowsAsync<WorkerUnavailableException>(() => backend.StepAsync(Step(new float[Elements]), Settings with { Model = "other" }));

        Assert.Contains("does not run model 'other' (it runs 'counting')", failure.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ConnectAsync_StrictReadinessWithAnotherModelBroken_JoinsAndStaysHealthyOnModelReady()
    {
        // Triton's --strict-readiness: ServerReady is false while any model on the server is not ready.
        var (backend, _) = await ConnectAsync(s => s.ServerIsReady = false);
        await using var owned = backend;

        Assert.True(await backend.CheckHealthAsync());
        Assert.True(backend.IsAvailable);
    }

    [Fact]
    public async Task ConnectAsync_ModelConfigSaysMaxBatchSize4_NeverSendsMoreThan4RowsCalibrationIncluded()
    {
        var (backend, server) = await ConnectAsync(s => (s.ConfigMaxBatchSize, s.RefuseAbove) = (4, 4));
        await using var owned = backend;
        var steps = Enumerable.Range(0, 6).Select(_ => backend.StepAsync(Step(new float[Elements]) with { Guidance = 2 }, Settings)).ToList();
        await Task.WhenAll(steps);

        Assert.Equal(4, backend.MaxBatchSize);
        Assert.Equal([1, 1, 4, 4], server.InferRows.Take(4));
        Assert.True(server.InferRows.Max() <= 4, $"rows sent: {string.Join(", ", server.InferRows)}");
        Assert.Equal(12, server.InferRows.Skip(4).Sum()); // six guided steps of two rows each
    }

    [Fact]
    public async Task ConnectAsync_NoModelConfigAndASmallerServerBatch_IsRefusedNamingMaxBatchSize()
    {
        // A server without the ModelConfig extension whose model takes at most 4 rows, as Triton's default config does.
        var refused = await Assert.ThrowsAsync<WorkerRefusedException>(() => ConnectAsync(s => s.RefuseAbove = 4));

        Assert.Contains("batch-size must be <= 4", refused.Message, StringComparison.Ordinal);
        Assert.Contains("refused a calibration pass of 8 rows", refused.Message, StringComparison.Ordinal);
        Assert.Contains("Backends:KServe:<n>:MaxBatchSize", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ConnectAsync_NoModelConfig_UsesTheConfiguredMaxBatchSize()
    {
        var (backend, server) = await ConnectAsync(maxBatchSize: 16);
        await using var owned = backend;

        Assert.Equal(16, backend.MaxBatchSize);
        Assert.Equal([1, 1, 8, 8], server.InferRows);
    }

    [Fact]
    public async Task ConnectAsync_ModelConfigMaxBatchSize1_IsRefusedNamingIt()
    {
        var refused = await Assert.ThrowsAsync<WorkerRefusedException>(() => ConnectAsync(s => s.ConfigMaxBatchSize = 1));

        Assert.Contains("max_batch_size 1; a guided step takes two rows", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ConnectAsync_ModelReadyNotFound_IsRefusedWithTheRemoteNameHint()
    {
        var refused = await Assert.ThrowsAsync<WorkerRefusedException>(() => ConnectAsync(s => s.ModelKnown = false));

        Assert.Contains("ModelReady failed with NotFound", refused.Message, StringComparison.Ordinal);
        Assert.Contains("check Backends:KServe:<n>:Models:counting:RemoteName and :Version", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ConnectAsync_OldTritonAnswersProbesUnavailable_Joins()
    {
        // Triton up to r22.07 answers ModelInfer for an unknown model with UNAVAILABLE "Request for unknown model".
        var (backend, server) = await ConnectAsync(s => s.ProbeStatus = StatusCode.Unavailable);
        await using var owned = backend;

        Assert.Equal(4, backend.Link.Fit.Samples);
        Assert.Equal(6, server.ProbeRequests.Count); // two rounds of three sizes
    }

    [Fact]
    public async Task ProbeAsync_UnavailableNotNamingTheProbe_IsATransportFailure()
    {
        var (backend, server) = await ConnectAsync();
        await using var owned = backend;
        server.ProbeStatus = StatusCode.Unavailable;
        server.ProbeDetail = "failed to connect to all addresses";

        var failure = await Assert.ThrowsAsync<WorkerUnavailableException>(() => backend.ProbeAsync());

        Assert.Contains("link probe of 65536 bytes failed with Unavailable", failure.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task StepAsync_ServerRefusesThePassAsInvalidArgument_LeavesTheRotationForGoodWithTheFix()
    {
        var (backend, server) = await ConnectAsync();
        await using var owned = backend;
        server.RefuseAbove = 0;

        await Assert.ThrowsAsync<WorkerUnavailableException>(() => backend.StepAsync(Step(new float[Elements]), Settings));
        var healthy = await backend.CheckHealthAsync();

        Assert.False(backend.IsAvailable);
        Assert.False(healthy);
        Assert.Contains("set Backends:KServe:<n>:MaxBatchSize to at most its max_batch_size", backend.Refusal, StringComparison.Ordinal);
    }

    /// <summary>
    /// A Triton-like server for the counting model whose every call advances the clock: α + β·bytes, plus, for a real
    /// ModelInfer, the injected compute for its rows. Probes to an unknown model are refused with NOT_FOUND (or, as old
    /// Triton releases do, UNAVAILABLE); readiness, ModelConfig and the largest batch it takes are scripted.
    /// </summary>
    private sealed class ScriptedServer(FakeTimeProvider time) : CallInvoker
    {
        public bool NaN { get; set; }

        public bool Down { get; set; }

        /// <summary>ServerReady's answer (Triton's strict readiness holds it false for any broken model).</summary>
        public bool ServerIsReady { get; set; } = true;

        /// <summary>ModelReady's answer for the counting model.</summary>
        public bool ModelIsReady { get; set; } = true;

        /// <summary>False: ModelReady and ModelMetadata answer NOT_FOUND, as Triton does for an unknown model.</summary>
        public bool ModelKnown { get; set; } = true;

        /// <summary>ModelConfig's max_batch_size; null: the server has no ModelConfig (UNIMPLEMENTED).</summary>
        public int? ConfigMaxBatchSize { get; set; }

        /// <summary>ModelInfer of more rows than this is refused with INVALID_ARGUMENT, as Triton words it.</summary>
        public int? RefuseAbove { get; set; }

        public StatusCode ProbeStatus { get; set; } = StatusCode.NotFound;

        public string ProbeDetail { get; set; } = $"Request for unknown model: '{KServeBackend.ProbeModel}' is not found";

        public List<string> ProbeRequests { get; } = [];

        public List<int> InferRows { get; } = [];

        public long LastInferBytes { get; private set; }

        public override AsyncUnaryCall<TResponse> AsyncUnaryCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options, TRequest request)
        {
            if (Down)
            {
                return Reply<TResponse>(null, new RpcException(new Status(StatusCode.Unavailable, "connection refused")));
            }

            var unknown = new RpcException(new Status(StatusCode.NotFound, "Request for unknown model: 'counting' is not found"));
            switch (request)
            {
                case ServerLiveRequest:
                    Advance(5 + 7);
                    return Reply<TResponse>(new ServerLiveResponse { Live = true });
                case ServerReadyRequest:
                    return Reply<TResponse>(new ServerReadyResponse { Ready = ServerIsReady });
                case ModelReadyRequest:
                    return ModelKnown ? Reply<TResponse>(new ModelReadyResponse { Ready = ModelIsReady }) : Reply<TResponse>(null, unknown);
                case ModelMetadataRequest:
                    return ModelKnown ? Reply<TResponse>(Metadata()) : Reply<TResponse>(null, unknown);
                case ModelConfigRequest:
                    return ConfigMaxBatchSize is { } max
                        ? Reply<TResponse>(new ModelConfigResponse { Config = new ModelConfig { Name = "counting", MaxBatchSize = max } })
                        : Reply<TResponse>(null, new RpcException(new Status(StatusCode.Unimplemented, "")));
                case ModelInferRequest probe when probe.ModelName == KServeBackend.ProbeModel:
                    ProbeRequests.Add(probe.ModelName);
                    Advance(probe.CalculateSize() + 5 + 5);
                    return Reply<TResponse>(null, new RpcException(new Status(ProbeStatus, ProbeDetail)));
                case ModelInferRequest infer:
                    var rows = (int)infer.Inputs[0].Shape[0];
                    if (rows > RefuseAbove)
                    {
                        return Reply<TResponse>(null, new RpcException(new Status(StatusCode.InvalidArgument, $"inference request batch-size must be <= {RefuseAbove} for 'counting'")));
                    }

                    InferRows.Add(rows);
                    var values = new float[rows * Elements];
                    if (NaN)
                    {
                        values[7] = float.NaN;
                    }

                    var response = new ModelInferResponse { ModelName = "counting" };
                    response.Outputs.Add(new ModelInferResponse.Types.InferOutputTensor { Name = "eps", Datatype = "FP32", Shape = { rows, 1, 24, 24 } });
                    response.RawOutputContents.Add(ByteString.CopyFrom(System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan())));
                    LastInferBytes = infer.CalculateSize() + 5 + response.CalculateSize() + 5;
                    Advance(LastInferBytes);
                    time.Advance(ComputeFixed + (rows * ComputePerRow));
                    return Reply<TResponse>(response);
                default:
                    throw new NotSupportedException(method.FullName);
            }
        }

        private void Advance(long bytes) => time.Advance(Alpha + TimeSpan.FromSeconds(Beta * bytes));

        private static ModelMetadataResponse Metadata()
        {
            var metadata = new ModelMetadataResponse { Name = "counting", Versions = { "1" } };
            metadata.Inputs.Add(new ModelMetadataResponse.Types.TensorMetadata { Name = "x", Datatype = "FP32", Shape = { -1, 1, 24, 24 } });
            metadata.Inputs.Add(new ModelMetadataResponse.Types.TensorMetadata { Name = "t", Datatype = "FP32", Shape = { -1 } });
            metadata.Inputs.Add(new ModelMetadataResponse.Types.TensorMetadata { Name = "condition", Datatype = "INT64", Shape = { -1 } });
            metadata.Outputs.Add(new ModelMetadataResponse.Types.TensorMetadata { Name = "eps", Datatype = "FP32", Shape = { -1, 1, 24, 24 } });
            return metadata;
        }

        private static AsyncUnaryCall<TResponse> Reply<TResponse>(object? response, Exception? error = null) =>
            new(error is null ? Task.FromResult((TResponse)response!) : Task.FromException<TResponse>(error), Task.FromResult(new Metadata()), () => Status.DefaultSuccess, () => [], () => { });

        public override TResponse BlockingUnaryCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options, TRequest request) => throw new NotSupportedException();

        public override AsyncServerStreamingCall<TResponse> AsyncServerStreamingCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options, TRequest request) => throw new NotSupportedException();

        public override AsyncClientStreamingCall<TRequest, TResponse> AsyncClientStreamingCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options) => throw new NotSupportedException();

        public override AsyncDuplexStreamingCall<TRequest, TResponse> AsyncDuplexStreamingCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options) => throw new NotSupportedException();
    }
}
