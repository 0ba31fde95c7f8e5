using Google.Protobuf;
using Grpc.Core;
using SearchOrchestrator.Denoising;
using SearchOrchestrator.Onnx.Manifests;
using SearchOrchestrator.Onnx.Repository;
using SearchOrchestrator.Onnx.Runtime;
using SearchOrchestrator.Protos.Inference;
using SearchOrchestrator.Server.OpenInference;
using SearchOrchestrator.Server.Tests.Grpc;
using SearchOrchestrator.Tests;
using SearchOrchestrator.Verifiers;
using InputTensor = SearchOrchestrator.Protos.Inference.ModelInferRequest.Types.InferInputTensor;

namespace SearchOrchestrator.Server.Tests.OpenInference;

/// <summary>The Open Inference Protocol service of the real serve host, over real gRPC on a loopback socket.</summary>
public sealed class OpenInferenceServiceTests(ServerFixture server, LocalModels local) : IClassFixture<ServerFixture>, IClassFixture<LocalModels>
{
    private const int Pixels = 24 * 24;

    private GRPCInferenceService.GRPCInferenceServiceClient Client => new(server.Channel);

    /// <summary>A batch of 3 for the counting denoiser: deterministic samples, times and conditions.</summary>
    private static (float[] Samples, float[] Times, long[] Conditions) Batch()
    {
        var random = new Random(7);
        var samples = Enumerable.Range(0, 3 * Pixels).Select(_ => (float)((random.NextDouble() * 2) - 1)).ToArray();
        return (samples, [900f, 500f, 20f], [3, 0, 9]);
    }

    private static ModelInferRequest RawRequest(float[] samples, float[] times, long[] conditions)
    {
        var n = times.Length;
        var request = new ModelInferRequest { ModelName = "counting", Id = "req-1" };
        request.Inputs.Add(new InputTensor { Name = "x", Datatype = "FP32", Shape = { n, 1, 24, 24 } });
        request.Inputs.Add(new InputTensor { Name = "t", Datatype = "FP32", Shape = { n } });
        request.Inputs.Add(new InputTensor { Name = "condition", Datatype = "INT64", Shape = { n } });
        request.RawInputContents.Add(ByteString.CopyFrom(System.Runtime.InteropServices.MemoryMarshal.AsBytes(samples.AsSpan())));
        request.RawInputContents.Add(ByteString.CopyFrom(System.Runtime.InteropServices.MemoryMarshal.AsBytes(times.AsSpan())));
        request.RawInputContents.Add(ByteString.CopyFrom(System.Runtime.InteropServices.MemoryMarshal.AsBytes(conditions.AsSpan())));
        return request;
    }

    private static float[] Floats(ByteString bytes) => System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(bytes.Span).ToArray();

    [Fact]
    public async Task ServerLiveAndReady_TheServeHost_AreTrue()
    {
        Assert.True((await Client.ServerLiveAsync(new ServerLiveRequest())).Live);
        Assert.True((await Client.ServerReadyAsync(new ServerReadyRequest())).Ready);
        Assert.True((await Client.ModelReadyAsync(new ModelReadyRequest { Name = "counting", Version = "1" })).Ready);
        Assert.Equal(OpenInferenceService.ServerName, (await Client.ServerMetadataAsync(new ServerMetadataRequest())).Name);
    }

    [Theory]
    [InlineData("nope", "", "no model named 'nope' is served")]
    [InlineData("counting", "2", "model 'counting' has no version '2'")]
    public async Task ModelReady_UnknownModelOrVersion_IsNotFoundAsTritonAnswers(string name, string version, string message)
    {
        var failure = await Assert.ThrowsAsync<RpcException>(async () => await Client.ModelReadyAsync(new ModelReadyRequest { Name = name, Version = version }));

        Assert.Equal(StatusCode.NotFound, failure.StatusCode);
        Assert.Contains(message, failure.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ServerMetadata_TheServeHost_ListsTritonsExtensionsItImplements()
    {
        Assert.Equal(["model_configuration", "statistics", "model_repository"], (await Client.ServerMetadataAsync(new ServerMetadataRequest())).Extensions);
    }

    [Fact]
    public async Task ModelMetadata_Denoiser_ListsTheManifestsTensorsWithABatchAxis()
    {
        var metadata = await Client.ModelMetadataAsync(new ModelMetadataRequest { Name = "counting" });

        Assert.Equal("counting", metadata.Name);
        Assert.Equal(["1"], metadata.Versions);
        Assert.Equal("onnxruntime_onnx", metadata.Platform);
        Assert.Equal(["x FP32 -1,1,24,24", "t FP32 -1", "condition INT64 -1"], metadata.Inputs.Select(t => $"{t.Name} {t.Datatype} {string.Join(',', t.Shape)}"));
        Assert.Equal("eps FP32 -1,1,24,24", metadata.Outputs.Select(t => $"{t.Name} {t.Datatype} {string.Join(',', t.Shape)}").Single());
    }

    [Fact]
    public async Task ModelMetadata_Verifier_ListsImageInAndLogitsOut()
    {
        var metadata = await Client.ModelMetadataAsync(new ModelMetadataRequest { Name = "count-verifier" });

        Assert.Equal("image FP32 -1,1,24,24", metadata.Inputs.Select(t => $"{t.Name} {t.Datatype} {string.Join(',', t.Shape)}").Single());
        Assert.Equal("logits FP32 -1,11", metadata.Outputs.Select(t => $"{t.Name} {t.Datatype} {string.Join(',', t.Shape)}").Single());
    }

    [Fact]
    public async Task ModelMetadata_UnknownModel_IsNotFound()
    {
        var error = await Assert.ThrowsAsync<RpcException>(() => Client.ModelMetadataAsync(new ModelMetadataRequest { Name = "nope" }).ResponseAsync);

        Assert.Equal(StatusCode.NotFound, error.StatusCode);
        Assert.Contains("served: count-verifier, counting", error.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ModelInfer_RawInputs_ReturnsWhatTheLocalDenoiserPredicts()
    {
        var (samples, times, conditions) = Batch();
        var expected = new float[3 * Pixels];
        await local.Repository.GetDenoiser("counting").PredictAsync(new DenoiserBatch(3, samples, times, conditions), expected);

        var response = await Client.ModelInferAsync(RawRequest(samples, times, conditions));

        Assert.Equal("counting", response.ModelName);
        Assert.Equal("1", response.ModelVersion);
        Assert.Equal("req-1", response.Id);
        var output = Assert.Single(response.Outputs);
        Assert.Equal(("eps", "FP32"), (output.Name, output.Datatype));
        Assert.Equal([3L, 1, 24, 24], output.Shape);
        var actual = Floats(Assert.Single(response.RawOutputContents));
        Assert.Equal(expected.Length, actual.Length);
        Assert.All(Enumerable.Range(0, expected.Length), i => Assert.True(Math.Abs(expected[i] - actual[i]) <= 1e-5, $"element {i}: {expected[i]} local, {actual[i]} remote"));
    }

    [Fact]
    public async Task ModelInfer_TypedContents_GivesTheSameAnswerAsRawContents()
    {
        var (samples, times, conditions) = Batch();
        var typed = new ModelInferRequest { ModelName = "counting" };
        typed.Inputs.Add(new InputTensor { Name = "x", Datatype = "FP32", Shape = { 3, 1, 24, 24 }, Contents = new InferTensorContents { Fp32Contents = { samples } } });
        typed.Inputs.Add(new InputTensor { Name = "t", Datatype = "FP32", Shape = { 3 }, Contents = new InferTensorContents { Fp32Contents = { times } } });
        typed.Inputs.Add(new InputTensor { Name = "condition", Datatype = "INT64", Shape = { 3 }, Contents = new InferTensorContents { Int64Contents = { conditions } } });
        typed.Outputs.Add(new ModelInferRequest.Types.InferRequestedOutputTensor { Name = "eps" });

        var fromTyped = await Client.ModelInferAsync(typed);
        var fromRaw = await Client.ModelInferAsync(RawRequest(samples, times, conditions));

        Assert.Equal(fromRaw.RawOutputContents[0], fromTyped.RawOutputContents[0]);
    }

    [Fact]
    public async Task ModelInfer_Verifier_ReturnsLogitsWhoseSoftmaxIsTheLocalScore()
    {
        var (samples, _, _) = Batch();
        var request = new ModelInferRequest { ModelName = "count-verifier" };
        request.Inputs.Add(new InputTensor { Name = "image", Datatype = "FP32", Shape = { 3, 1, 24, 24 } });
        request.RawInputContents.Add(ByteString.CopyFrom(System.Runtime.InteropServices.MemoryMarshal.AsBytes(samples.AsSpan())));
        var scores = await local.Repository.GetVerifier("count-verifier").ScoreAsync(new VerifierBatch(new Tensors.SampleShape(1, 24, 24), samples, ["2", "2", "2"]));

        var response = await Client.ModelInferAsync(request);

        Assert.Equal([3L, 11], response.Outputs[0].Shape);
        var logits = Floats(response.RawOutputContents[0]);
        for (var i = 0; i < 3; i++)
        {
            var row = logits.AsSpan(i * 11, 11).ToArray();
            var max = row.Max();
            var probability = Math.Exp(row[2] - max) / row.Sum(v => Math.Exp(v - max));
            Assert.Equal(scores[i], probability, 5);
        }
    }

    public static TheoryData<string, string, StatusCode> BadRequests() => new()
    {
        { "unknown-model", "no model named 'nope'", StatusCode.NotFound },
        { "unknown-version", "has no version '7'", StatusCode.NotFound },
        { "wrong-dtype", "input 't': datatype is 'FP64', expected FP32", StatusCode.InvalidArgument },
        { "wrong-shape", "input 'x': shape is [3, 1, 28, 28], expected [-1, 1, 24, 24]", StatusCode.InvalidArgument },
        { "byte-count", "input 'x': raw_input_contents holds 6908 bytes, expected 6912", StatusCode.InvalidArgument },
        { "missing-input", "needs the input 'condition' (INT64 [-1]), missing", StatusCode.InvalidArgument },
        { "unknown-input", "input 'noise': model 'counting' has no such input", StatusCode.InvalidArgument },
        { "raw-count", "raw_input_contents has 2 entries but inputs has 3", StatusCode.InvalidArgument },
        { "batch-mismatch", "input 't': batch is 2 but an earlier input has batch 3", StatusCode.InvalidArgument },
        { "nan", "input 't': element 1 is NaN", StatusCode.InvalidArgument },
        { "condition-id", "input 'condition': condition id 42 is not one model 'counting' knows", StatusCode.InvalidArgument },
        { "contents-and-raw", "input 'x': has both contents and raw_input_contents", StatusCode.InvalidArgument },
        { "typed-count", "input 't': contents.fp32_contents holds 2 values, expected 3", StatusCode.InvalidArgument },
        { "unknown-output", "requested output 'logits': model 'counting' has the one output 'eps'", StatusCode.InvalidArgument },
    };

    [Theory]
    [MemberData(nameof(BadRequests))]
    public async Task ModelInfer_BadRequest_IsRefusedNamingTheTensor(string defect, string message, StatusCode status)
    {
        var (samples, times, conditions) = Batch();
        var request = RawRequest(samples, times, conditions);
        switch (defect)
        {
            case "unknown-model": request.ModelName = "nope"; break;
            case "unknown-version": request.ModelVersion = "7"; break;
            case "wrong-dtype": request.Inputs[1].Datatype = "FP64"; break;
            case "wrong-shape": request.Inputs[0].Shape[2] = 28; request.Inputs[0].Shape[3] = 28; break;
            case "byte-count": request.RawInputContents[0] = ByteString.CopyFrom(request.RawInputContents[0].Span[4..]); break;
            case "missing-input": request.Inputs.RemoveAt(2); request.RawInputContents.RemoveAt(2); break;
            case "unknown-input": request.Inputs[1].Name = "noise"; break;
            case "raw-count": request.RawInputContents.RemoveAt(2); break;
            case "batch-mismatch": request = RawRequest(samples, [1f, 2f], [1, 2]); request.Inputs[0].Shape[0] = 3; break;
            case "nan": request = RawRequest(samples, [1f, float.NaN, 3f], conditions); break;
            case "condition-id": request = RawRequest(samples, times, [1, 42, 3]); break;
            case "contents-and-raw": request.Inputs[0].Contents = new InferTensorContents { Fp32Contents = { 1f } }; break;
            case "typed-count":
                request.RawInputContents.Clear();
                request.Inputs[0].Contents = new InferTensorContents { Fp32Contents = { samples } };
                request.Inputs[1].Contents = new InferTensorContents { Fp32Contents = { 1f, 2f } };
                request.Inputs[2].Contents = new InferTensorContents { Int64Contents = { conditions } };
                break;
            case "unknown-output": request.Outputs.Add(new ModelInferRequest.Types.InferRequestedOutputTensor { Name = "logits" }); break;
        }

        var error = await Assert.ThrowsAsync<RpcException>(() => Client.ModelInferAsync(request).ResponseAsync);

        Assert.Equal(status, error.StatusCode);
        Assert.Contains(message, error.Status.Detail, StringComparison.Ordinal);
    }
}

/// <summary>The shipped models loaded in-process, the local backend the remote one is compared with.</summary>
public sealed class LocalModels : IDisposable
{
    public ModelRepository Repository { get; } = ModelRepository.Load(new ModelRepositoryOptions { Path = RepositoryPaths.Models, ExecutionProvider = "cpu" });

    public ModelManifest Manifest(string name) => Repository.Models.Single(m => m.Name == name).Manifest!;

    public void Dispose() => Repository.Dispose();
}
