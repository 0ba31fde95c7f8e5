using Grpc.Core;
using SearchOrchestrator.Protos.V1;
using SearchClient = SearchOrchestrator.Protos.V1.Search.SearchClient;

namespace SearchOrchestrator.Server.Tests.Grpc;

/// <summary><c>Search.Estimate</c> over real gRPC, against what <c>Search.Generate</c> measures for the same request.</summary>
public sealed class EstimateTests(ServerFixture server) : IClassFixture<ServerFixture>
{
    private SearchClient Client => new(server.Channel);

    private static GenerateRequest Request() => new()
    {
        Model = "counting",
        Condition = "4",
        Steps = 10,
        Guidance = 2,
        Eta = 0.5,
        Seed = 5,
        Verifiers = { "count-verifier" },
    };

    public static TheoryData<string> FixedCostRequests() =>
    [
        "shared_prefix",
        "best_of_n",
        "search_over_paths",
        "zero_order",
    ];

    private static GenerateRequest With(string strategy)
    {
        var request = Request();
        switch (strategy)
        {
            case "shared_prefix":
                request.SharedPrefix = new SharedPrefix { K = 3, ForkAt = 4 };
                break;
            case "best_of_n":
                request.BestOfN = new BestOfN { N = 2 };
                break;
            case "search_over_paths":
                request.SearchOverPaths = new SearchOverPaths { Candidates = 1, Continuations = 2, StartStep = 4, Forward = 2, Backward = 4 };
                break;
            default:
                request.ZeroOrder = new ZeroOrder { Neighbours = 2, Iterations = 1 };
                break;
        }

        return request;
    }

    [Theory]
    [MemberData(nameof(FixedCostRequests))]
    public async Task Estimate_FixedCostRequest_EqualsTheNfeGenerateMeasures(string strategy)
    {
        var estimate = await Client.EstimateAsync(With(strategy));
        var measured = (await Client.GenerateAsync(With(strategy))).Cost;

        Assert.True(estimate.Exact);
        Assert.Equal(strategy, estimate.Strategy);
        Assert.Equal(measured.Nfe, estimate.Nfe);
        Assert.Equal(measured.NfeIndependent, estimate.NfeIndependent);
        Assert.Equal(measured.Nfe / 10.0, estimate.Multiplier, 12);
    }

    [Fact]
    public async Task Estimate_SharedPrefix_GivesTheFormulaMultiplier()
    {
        var estimate = await Client.EstimateAsync(With("shared_prefix"));

        // m = k − (k−1)·s/N = 3 − 2·4/10.
        Assert.Equal(2.2, estimate.Multiplier, 12);
        Assert.Equal(22, estimate.Nfe);
        Assert.Equal(30, estimate.NfeIndependent);
    }

    [Fact]
    public async Task Estimate_Dfs_BoundsTheNfeGenerateMeasures()
    {
        var request = Request();
        request.Dfs = new Dfs { EvaluateAt = { 4, 7 }, Threshold = 0.99, RecurDepth = 2, MaxBacktracks = 3, PreviewSteps = 1 };

        var estimate = await Client.EstimateAsync(request);
        var measured = (await Client.GenerateAsync(request)).Cost;

        Assert.False(estimate.Exact);
        Assert.Equal(10, estimate.NfeMin);
        Assert.Equal(10 + (3 * 2), estimate.Nfe);
        Assert.InRange(measured.Nfe, estimate.NfeMin, estimate.Nfe);
        Assert.InRange(measured.NfeIndependent, estimate.NfeIndependentMin, estimate.NfeIndependent);
    }

    [Fact]
    public async Task Estimate_ForkAtAuto_ShowsTheCalibrationUntilGenerateHasRunIt()
    {
        var request = Request();
        request.Condition = "6"; // calibrated by no other test of this server
        request.Guidance = 1;
        request.SharedPrefix = new SharedPrefix { K = 2 };

        var before = await Client.EstimateAsync(request);
        var measured = (await Client.GenerateAsync(request)).Cost;
        var after = await Client.EstimateAsync(request);

        // 16 probes step to grid step 9; at each grid step g = 0 … 9 four siblings per probe finish the 10 − g steps left.
        Assert.Equal((16 * 9) + (16 * 4 * 55), before.CalibrationNfe);
        Assert.True(before.Calibrates);
        Assert.Equal(before.CalibrationNfe, measured.CalibrationNfe);
        Assert.Equal(0, after.CalibrationNfe);
    }

    [Fact]
    public async Task Estimate_UnknownModel_IsNotFound()
    {
        var request = With("best_of_n");
        request.Model = "no-such-model";

        var error = await Assert.ThrowsAsync<RpcException>(() => Client.EstimateAsync(request).ResponseAsync);

        Assert.Equal(StatusCode.NotFound, error.StatusCode);
    }

    [Fact]
    public async Task Estimate_ForkStepPastN_IsInvalidArgumentNamingIt()
    {
        var request = Request();
        request.SharedPrefix = new SharedPrefix { K = 2, ForkAt = 10 };

        var error = await Assert.ThrowsAsync<RpcException>(() => Client.EstimateAsync(request).ResponseAsync);

        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
        Assert.Contains("fork_at", error.Status.Detail, StringComparison.Ordinal);
    }
}
