using Grpc.Core;
using Grpc.Health.V1;
using SearchOrchestrator.Protos.V1;
using SearchClient = SearchOrchestrator.Protos.V1.Search.SearchClient;

namespace SearchOrchestrator.Server.Tests.Grpc;

public sealed class ApiKeyInterceptorTests(AuthServerFixture server) : IClassFixture<AuthServerFixture>
{
    private SearchClient Client => new(server.Channel);

    private static Metadata Key(string key) => new() { { "x-api-key", key } };

    private static GenerateRequest Small(int steps = 8, int n = 1) => new()
    {
        Model = "counting",
        Condition = "2",
        Steps = steps,
        BestOfN = new BestOfN { N = n },
    };

    [Fact]
    public async Task Generate_WithoutAKey_IsUnauthenticated()
    {
        var ex = await Assert.ThrowsAsync<RpcException>(() => Client.GenerateAsync(Small()).ResponseAsync);

        Assert.Equal(StatusCode.Unauthenticated, ex.StatusCode);
        Assert.Equal("this server needs an API key in the 'x-api-key' header.", ex.Status.Detail);
    }

    [Fact]
    public async Task Generate_WithAWrongKey_IsUnauthenticated()
    {
        var ex = await Assert.ThrowsAsync<RpcException>(() => Client.GenerateAsync(Small(), Key(AuthServerFixture.Alice + "x")).ResponseAsync);

        Assert.Equal(StatusCode.Unauthenticated, ex.StatusCode);
    }

    [Fact]
    public async Task Generate_WithARightKey_Succeeds()
    {
        var response = await Client.GenerateAsync(Small(), Key(AuthServerFixture.Bob));

        Assert.Equal(8, response.Cost.Nfe);
    }

    [Fact]
    public async Task Health_WithoutAKey_StaysOpen()
    {
        var response = await new Health.HealthClient(server.Channel).CheckAsync(new HealthCheckRequest());

        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, response.Status);
    }

    [Fact]
    public async Task Generate_PastAKeysOwnLimit_IsResourceExhaustedWhileOtherKeysRun()
    {
        using var running = Client.GenerateStream(Small(steps: 50, n: 16), Key(AuthServerFixture.Alice));
        Assert.True(await running.ResponseStream.MoveNext());

        var ex = await Assert.ThrowsAsync<RpcException>(() => Client.GenerateAsync(Small(), Key(AuthServerFixture.Alice)).ResponseAsync);

        Assert.Equal(StatusCode.ResourceExhausted, ex.StatusCode);
        Assert.Contains("API key 'alice'", ex.Status.Detail);
        Assert.Equal(8, (await Client.GenerateAsync(Small(), Key(AuthServerFixture.Bob))).Cost.Nfe);
    }
}
