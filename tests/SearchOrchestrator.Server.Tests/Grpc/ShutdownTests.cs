using Grpc.Core;
using Grpc.Net.Client;
using SearchOrchestrator.Protos.V1;
using SearchOrchestrator.Tests;
using SearchClient = SearchOrchestrator.Protos.V1.Search.SearchClient;

namespace SearchOrchestrator.Server.Tests.Grpc;

/// <summary>Stopping the server drains running searches up to the drain timeout, then cancels them.</summary>
public sealed class ShutdownTests
{
    private static GenerateRequest Long() => new() { Model = "counting", Condition = "4", Steps = 50, Guidance = 2, BestOfN = new BestOfN { N = 24 } };

    private static async Task<(Microsoft.AspNetCore.Builder.WebApplication App, GrpcChannel Channel)> StartAsync(string drainTimeout)
    {
        var app = SearchOrchestratorServer.Build(
        [
            "--urls", "http://127.0.0.1:0",
            "--Models:Path", RepositoryPaths.Models,
            "--Models:ExecutionProvider", "cpu",
            "--Logging:LogLevel:Default", "Warning",
            "--Serving:DrainTimeout", drainTimeout,
        ]);
        await app.StartAsync();
        return (app, GrpcChannel.ForAddress(app.Urls.First()));
    }

    [Fact]
    public async Task StopAsync_SearchRunning_LetsItFinishWithinTheDrainTimeout()
    {
        var (app, channel) = await StartAsync("00:01:00");
        using var call = new SearchClient(channel).GenerateStream(Long());
        Assert.True(await call.ResponseStream.MoveNext()); // under way

        var stopping = app.StopAsync();
        var events = new List<GenerateEvent>();
        await foreach (var e in call.ResponseStream.ReadAllAsync())
        {
            events.Add(e);
        }

        await stopping;
        Assert.Equal(24 * 50, events[^1].Result.Cost.Nfe);
        channel.Dispose();
        await app.DisposeAsync();
    }

    [Fact]
    public async Task StopAsync_DrainTimeoutShorterThanTheSearch_CancelsIt()
    {
        var (app, channel) = await StartAsync("00:00:00.050");
        using var call = new SearchClient(channel).GenerateStream(Long());
        Assert.True(await call.ResponseStream.MoveNext());

        await app.StopAsync();
        var ex = await Assert.ThrowsAsync<RpcException>(async () =>
        {
            await foreach (var e in call.ResponseStream.ReadAllAsync())
            {
                Assert.NotEqual(GenerateEvent.EventOneofCase.Result, e.EventCase);
            }
        });

        Assert.NotEqual(StatusCode.OK, ex.StatusCode);
        channel.Dispose();
        await app.DisposeAsync();
    }
}
