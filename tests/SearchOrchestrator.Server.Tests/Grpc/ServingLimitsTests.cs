using Grpc.Core;
using SearchOrchestrator.Protos.V1;
using SearchClient = SearchOrchestrator.Protos.V1.Search.SearchClient;

namespace SearchOrchestrator.Server.Tests.Grpc;

/// <summary>The service's caps, and garbage a client can send; after each, a normal request still succeeds.</summary>
public sealed class ServingLimitsTests(LimitedServerFixture server) : IClassFixture<LimitedServerFixture>
{
    private SearchClient Client => new(server.Channel);

    private static GenerateRequest Small() => new()
    {
        Model = "counting",
        Condition = "3",
        Steps = 10,
        Guidance = 2,
        Eta = 0.5,
        BestOfN = new BestOfN { N = 2 },
        Verifiers = { "count-verifier" },
    };

    private async Task AssertStillServing() => Assert.Single((await Client.GenerateAsync(Small())).Candidates);

    [Fact]
    public async Task Generate_StepsOverTheCap_IsInvalidArgumentNamingTheSetting()
    {
        var request = Small();
        request.Steps = 41;

        var ex = await Assert.ThrowsAsync<RpcException>(() => Client.GenerateAsync(request).ResponseAsync);

        Assert.Equal(StatusCode.InvalidArgument, ex.StatusCode);
        Assert.Equal("steps: steps must be at most 40 on this server (Serving:MaxSteps), got 41.", ex.Status.Detail);
        await AssertStillServing();
    }

    [Fact]
    public async Task Generate_PlanOverTheNfeCap_IsRefusedUpFrontUnlessTheBudgetFits()
    {
        var request = Small();
        request.BestOfN.N = 30; // 30 × 40 steps

        request.Steps = 40;
        var ex = await Assert.ThrowsAsync<RpcException>(() => Client.GenerateAsync(request).ResponseAsync);
        Assert.Equal(StatusCode.ResourceExhausted, ex.StatusCode);
        Assert.Contains("may spend 1200 NFE, over the server's cap of 1000 per request", ex.Status.Detail);

        request.Budget = new Budget { MaxNfe = 400 };
        var limited = await Client.GenerateAsync(request);
        Assert.Equal(400, limited.Cost.Nfe);
        Assert.True(limited.BudgetLimited);
    }

    [Fact]
    public async Task Generate_ForkAtAutoWhoseCalibrationIsOverTheNfeCap_IsRefusedNamingTheCap()
    {
        var request = Small();
        request.SharedPrefix = new SharedPrefix { K = 4 }; // 40 NFE of search, 3,664 of calibration first

        var ex = await Assert.ThrowsAsync<RpcException>(() => Client.GenerateAsync(request).ResponseAsync);

        Assert.Equal(StatusCode.ResourceExhausted, ex.StatusCode);
        Assert.Equal("this search may spend 3704 NFE (3664 of them calibrating fork_at: auto; give fork_at a step to skip it), over the server's cap of 1000 per request (Serving:MaxNfePerRequest); lower the strategy's size or set budget.max_nfe.", ex.Status.Detail);
        await AssertStillServing();
    }

    [Fact]
    public async Task Generate_ResponseThatCouldExceedTheSendLimit_IsRefusedBeforeItRuns()
    {
        var request = Small();
        request.IncludePng = true; // a 208 × 208 PNG per candidate: up to 130,103 bytes each
        request.Candidates = 2;

        var ex = await Assert.ThrowsAsync<RpcException>(() => Client.GenerateAsync(request).ResponseAsync);

        Assert.Equal(StatusCode.ResourceExhausted, ex.StatusCode);
        Assert.Equal("the response may take 264778 bytes (2 candidates, with PNGs), over the server's limit of 65536 bytes (Serving:MaxSendMessageSize); ask for fewer candidates, or leave out include_png or include_tensors.", ex.Status.Detail);
        await AssertStillServing();
    }

    [Fact]
    public async Task Generate_PastTheConcurrencyLimit_IsResourceExhaustedNotQueued()
    {
        var slow = Small();
        slow.Steps = 40;
        slow.BestOfN.N = 24;
        var running = Client.GenerateStream(slow);
        Assert.True(await running.ResponseStream.MoveNext()); // the first search is under way

        var ex = await Assert.ThrowsAsync<RpcException>(() => Client.GenerateAsync(Small()).ResponseAsync);

        Assert.Equal(StatusCode.ResourceExhausted, ex.StatusCode);
        Assert.Contains("Serving:MaxConcurrentSearches", ex.Status.Detail);
        running.Dispose(); // a client that walks away mid-stream
        await WaitUntilServingAsync();
    }

    [Fact]
    public async Task Generate_MalformedProtobuf_FailsThatCallOnly()
    {
        var method = new Method<byte[], byte[]>(MethodType.Unary, "searchorchestrator.v1.Search", "Generate", Marshallers.Create(b => b, b => b), Marshallers.Create(b => b, b => b));

        var ex = await Assert.ThrowsAsync<RpcException>(() => server.Channel.CreateCallInvoker().AsyncUnaryCall(method, null, new CallOptions(), [0x0A, 0xFF, 0xFF, 0xFF, 0x0F, 0x01]).ResponseAsync);

        Assert.NotEqual(StatusCode.OK, ex.StatusCode);
        await AssertStillServing();
    }

    [Fact]
    public async Task Generate_OversizedMessage_IsResourceExhausted()
    {
        var request = Small();
        request.Condition = new string('7', 100_000);

        var ex = await Assert.ThrowsAsync<RpcException>(() => Client.GenerateAsync(request).ResponseAsync);

        Assert.Equal(StatusCode.ResourceExhausted, ex.StatusCode);
        await AssertStillServing();
    }

    /// <summary>The abandoned search frees its slot once its cancellation lands; retry briefly until it has.</summary>
    private async Task WaitUntilServingAsync()
    {
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                await AssertStillServing();
                return;
            }
            catch (RpcException ex) when (ex.StatusCode == StatusCode.ResourceExhausted && attempt < 200)
            {
                await Task.Yield();
            }
        }
    }
}
