using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;
using Inference;
using Ours = SearchOrchestrator.Protos.Inference;

namespace SearchOrchestrator.Cli.Tests.Workers;

/// <summary>
/// A client built only from Triton's published protos (<c>protos/triton</c>, namespace <c>Inference</c>) against real
/// <c>searchorch serve</c> and <c>searchorch worker</c> processes on loopback: the calls Triton's tools make after
/// ModelMetadata (ModelConfig, ModelStatistics, RepositoryIndex) decode with Triton's own field numbers.
/// </summary>
public sealed class TritonClientTests
{
    private const string Secret = "triton-test-secret-01";

    private static Task<WorkerProcess> StartAsync(string command) =>
        command == "worker" ? WorkerProcess.StartAsync("--secret", Secret) : WorkerProcess.StartServeAsync("--Auth:ApiKeys:0:Name", "test", "--Auth:ApiKeys:0:Key", Secret);

    private static Metadata Key => new() { { "x-api-key", Secret } };

    [Theory]
    [InlineData("serve")]
    [InlineData("worker")]
    public async Task ServerLiveAndReady_WithoutTheKey_AreAnsweredButModelCallsNeedIt(string command)
    {
        await using var process = await StartAsync(command);
        using var channel = GrpcChannel.ForAddress(process.Url);
        var client = new GRPCInferenceService.GRPCInferenceServiceClient(channel);

        var live = await client.ServerLiveAsync(new ServerLiveRequest());
        var ready = await client.ServerReadyAsync(new ServerReadyRequest());
        var refused = await Assert.ThrowsAsync<RpcException>(async () => await client.ModelConfigAsync(new ModelConfigRequest { Name = "counting" }));

        Assert.True(live.Live);
        Assert.True(ready.Ready);
        Assert.Equal(StatusCode.Unauthenticated, refused.StatusCode);
    }

    [Theory]
    [InlineData("serve")]
    [InlineData("worker")]
    public async Task ModelConfigStatisticsAndIndex_TritonsProtos_DecodeWhatTheServerSays(string command)
    {
        await using var process = await StartAsync(command);
        using var channel = GrpcChannel.ForAddress(process.Url);
        var client = new GRPCInferenceService.GRPCInferenceServiceClient(channel);

        var metadata = await client.ServerMetadataAsync(new ServerMetadataRequest(), Key);
        var config = (await client.ModelConfigAsync(new ModelConfigRequest { Name = "counting" }, Key)).Config;
        // One ModelInfer of 3 rows shaped as ModelConfig says (the scalar time and condition as dims [1]) and one refused.
        await InferAsync(channel, rows: 3);
        await Assert.ThrowsAsync<RpcException>(() => InferAsync(channel, rows: 3, condition: 99));
        var stats = (await client.ModelStatisticsAsync(new ModelStatisticsRequest { Name = "counting" }, Key)).ModelStats.Single();
        var everyModel = await client.ModelStatisticsAsync(new ModelStatisticsRequest(), Key);
        var index = await client.RepositoryIndexAsync(new RepositoryIndexRequest(), Key);
        var unknown = await Assert.ThrowsAsync<RpcException>(async () => await client.ModelReadyAsync(new ModelReadyRequest { Name = "nope" }, Key));

        Assert.Equal(["model_configuration", "statistics", "model_repository"], metadata.Extensions);
        Assert.Equal("counting", config.Name);
        Assert.Equal("onnxruntime_onnx", config.Platform);
        Assert.Equal("onnxruntime", config.Backend);
        Assert.Equal(65536, config.MaxBatchSize);
        Assert.Equal(ModelConfig.SchedulingChoiceOneofCase.None, config.SchedulingChoiceCase);
        Assert.Equal(
            ["x TYPE_FP32 [1,24,24] reshape none", "t TYPE_FP32 [1] reshape []", "condition TYPE_INT64 [1] reshape []"],
            config.Input.Select(i => $"{i.Name} {Name(i.DataType)} [{string.Join(",", i.Dims)}] reshape {(i.Reshape is null ? "none" : $"[{string.Join(",", i.Reshape.Shape)}]")}"));
        Assert.Equal(["eps TYPE_FP32 [1,24,24]"], config.Output.Select(o => $"{o.Name} {Name(o.DataType)} [{string.Join(",", o.Dims)}]"));

        Assert.Equal(("counting", "1"), (stats.Name, stats.Version));
        Assert.Equal(3UL, stats.InferenceCount);
        Assert.Equal(1UL, stats.ExecutionCount);
        Assert.Equal(1UL, stats.InferenceStats.Success.Count);
        Assert.Equal(1UL, stats.InferenceStats.Fail.Count);
        Assert.Equal(1UL, stats.InferenceStats.ComputeInfer.Count);
        Assert.True(stats.InferenceStats.ComputeInfer.Ns > 0);
        Assert.True(stats.LastInference > 0);
        Assert.Equal([(3UL, 1UL)], stats.BatchStats.Select(b => (b.BatchSize, b.ComputeInfer.Count)));
        Assert.Equal(["count-verifier", "counting", "shapes-t2i/vae_decoder", "sudoku"], everyModel.ModelStats.Select(s => s.Name));

        // shapes-t2i is a pipeline (its VAE decoder is served as shapes-t2i/vae_decoder), its verifier reads prompts and
        // count-verifier-t takes times, which this samples-only protocol cannot carry: in the repository, not served over it.
        Assert.Equal(["count-verifier 1 READY", "count-verifier-t  UNAVAILABLE", "counting 1 READY", "shapes-t2i  UNAVAILABLE", "shapes-t2i-verifier  UNAVAILABLE", "shapes-t2i/vae_decoder 1 READY", "sudoku 1 READY"], index.Models.Select(m => $"{m.Name} {m.Version} {m.State}"));
        Assert.Equal(StatusCode.NotFound, unknown.StatusCode);
    }

    private static string Name(DataType type) => type.GetType().GetField(type.ToString())!.GetCustomAttributes(typeof(Google.Protobuf.Reflection.OriginalNameAttribute), false).Cast<Google.Protobuf.Reflection.OriginalNameAttribute>().Single().Name;

    private static async Task InferAsync(GrpcChannel channel, int rows, long condition = 3)
    {
        var request = new Ours.ModelInferRequest { ModelName = "counting" };
        request.Inputs.Add(new Ours.ModelInferRequest.Types.InferInputTensor { Name = "x", Datatype = "FP32", Shape = { rows, 1, 24, 24 } });
        request.Inputs.Add(new Ours.ModelInferRequest.Types.InferInputTensor { Name = "t", Datatype = "FP32", Shape = { rows, 1 } });
        request.Inputs.Add(new Ours.ModelInferRequest.Types.InferInputTensor { Name = "condition", Datatype = "INT64", Shape = { rows, 1 } });
        request.RawInputContents.Add(ByteString.CopyFrom(new byte[rows * 24 * 24 * sizeof(float)]));
        request.RawInputContents.Add(ByteString.CopyFrom(System.Runtime.InteropServices.MemoryMarshal.AsBytes(Enumerable.Repeat(500f, rows).ToArray().AsSpan())));
        request.RawInputContents.Add(ByteString.CopyFrom(System.Runtime.InteropServices.MemoryMarshal.AsBytes(Enumerable.Repeat(condition, rows).ToArray().AsSpan())));
        await new Ours.GRPCInferenceService.GRPCInferenceServiceClient(channel).ModelInferAsync(request, Key);
    }
}
