using Google.Protobuf;
using Grpc.Core;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using SearchOrchestrator.Protos.Worker.V1;
using SearchOrchestrator.Server.Workers;
using SearchOrchestrator.Workers;

namespace SearchOrchestrator.Server.Tests.Workers;

/// <summary>The gRPC worker client against a worker that answers with data that cannot be right, over a real socket.</summary>
public sealed class GrpcWorkerClientTests : IAsyncLifetime
{
    private WebApplication _app = null!;

    public async Task InitializeAsync()
    {
        var builder = WebApplication.CreateBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0").ConfigureKestrel(k => k.ConfigureEndpointDefaults(e => e.Protocols = HttpProtocols.Http2));
        builder.Logging.ClearProviders();
        builder.Services.AddGrpc();
        _app = builder.Build();
        _app.MapGrpcService<LyingWorker>();
        await _app.StartAsync();
    }

    public async Task DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    [Theory]
    [InlineData(LyingWorker.NaNState, "not 4 finite float32 values")]
    [InlineData(LyingWorker.ShortState, "not 4 finite float32 values")]
    [InlineData(LyingWorker.MissingResult, "sent 2 nodes and got 1 results back")]
    public async Task StepAsync_WorkerAnswersBadData_ThrowsWorkerDataExceptionNamingIt(int lie, string expected)
    {
        await using var client = new GrpcWorkerClient(_app.Urls.First(), "s", secret: null);
        var items = Enumerable.Range(0, 2).Select(i => new RemoteStep(default, 0, [1, 2, 3, 4], new float[4])).ToList();

        var error = await Assert.ThrowsAsync<WorkerDataException>(() => client.StepAsync(new SearchOrchestrator.Workers.TrajectorySettings("m", 10, SearchOrchestrator.Processes.SamplerSettings.Ddim(0), null, 1, lie), items));

        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task DescribeAsync_WorkerFails_ThrowsWorkerUnavailableWithTheStatus()
    {
        await using var client = new GrpcWorkerClient(_app.Urls.First(), "s", secret: null);

        var error = await Assert.ThrowsAsync<WorkerUnavailableException>(() => client.DescribeAsync());

        Assert.Contains("Internal", error.Message, StringComparison.Ordinal);
    }

    /// <summary>A worker whose Step lies in the way named by the request's condition id.</summary>
    private sealed class LyingWorker : Worker.WorkerBase
    {
        public const int NaNState = 0;
        public const int ShortState = 1;
        public const int MissingResult = 2;

        public override Task<DescribeResponse> Describe(DescribeRequest request, ServerCallContext context) =>
            throw new RpcException(new Status(StatusCode.Internal, "the device fell over"));

        public override Task<StepResponse> Step(StepRequest request, ServerCallContext context)
        {
            var response = new StepResponse();
            var good = ByteString.CopyFrom(new byte[16]);
            var lie = request.Settings.ConditionId switch
            {
                NaNState => ByteString.CopyFrom(BitConverter.GetBytes(float.NaN).Concat(new byte[12]).ToArray()),
                ShortState => ByteString.CopyFrom(new byte[12]),
                _ => good,
            };
            response.Results.Add(new StepResult { State = lie, Prediction = good });
            if (request.Settings.ConditionId != MissingResult)
            {
                response.Results.Add(new StepResult { State = good, Prediction = good });
            }

            return Task.FromResult(response);
        }
    }
}
