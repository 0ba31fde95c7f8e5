using Grpc.Core;
using Grpc.Health.V1;
using SearchOrchestrator.Protos.V1;
using SearchClient = SearchOrchestrator.Protos.V1.Search.SearchClient;

namespace SearchOrchestrator.Server.Tests.Grpc;

/// <summary>A server whose local compute is off and that has no worker: it says so on health and on every search.</summary>
public sealed class NoBackendServerFixture : ServerFixture
{
    protected override string[] ExtraArguments => ["--Workers:UseLocal", "false"];
}

public sealed class NoBackendTests(NoBackendServerFixture server) : IClassFixture<NoBackendServerFixture>
{
    [Fact]
    public async Task Health_NoBackendForTheServedModels_IsNotServing()
    {
        var response = await new Health.HealthClient(server.Channel).CheckAsync(new HealthCheckRequest());

        Assert.Equal(HealthCheckResponse.Types.ServingStatus.NotServing, response.Status);
    }

    [Fact]
    public async Task Generate_NoBackend_IsUnavailableWithTheReason()
    {
        var ex = await Assert.ThrowsAsync<RpcException>(async () =>
            await new SearchClient(server.Channel).GenerateAsync(new GenerateRequest { Model = "counting", Condition = "3", Steps = 4 }));

        Assert.Equal(StatusCode.Unavailable, ex.StatusCode);
        Assert.Equal("No backend is available to run the step: every worker is out of rotation and local compute is off (Workers:UseLocal).", ex.Status.Detail);
    }
}
