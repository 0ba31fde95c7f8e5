using System.Net.Http.Json;
using System.Text.Json;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using SearchOrchestrator.Protos.V1;
using SearchClient = SearchOrchestrator.Protos.V1.Search.SearchClient;

namespace SearchOrchestrator.Server.Tests.Strategies;

/// <summary>Strategies chosen by name over gRPC, HTTP/JSON and the OpenAI-compatible endpoint, and explicit presence of typed parameters.</summary>
public sealed class NamedStrategyTests(StrategyServerFixture server) : IClassFixture<StrategyServerFixture>
{
    private SearchClient Client => new(server.Channel);

    private static GenerateRequest Request() => new()
    {
        Model = "counting",
        Condition = "4",
        Steps = 10,
        Eta = 0.5,
        Seed = 3,
        Verifiers = { "count-verifier" },
    };

    private static NamedStrategy Named(string name, string parameters) => new() { Name = name, Parameters = Struct.Parser.ParseJson(parameters) };

    [Fact]
    public async Task Generate_StrategyDefinedOnlyInTheTestAssembly_RunsByNameEndToEnd()
    {
        var request = Request();
        request.Named = Named(RootsStrategy.StrategyName, """{"roots": 3}""");
        request.Candidates = 3;

        var estimate = await Client.EstimateAsync(request);
        var result = await Client.GenerateAsync(request);

        Assert.Equal(RootsStrategy.StrategyName, result.Strategy);
        Assert.Equal(3, result.Candidates.Count);
        Assert.All(result.Candidates, c => Assert.True(c.Complete && c.HasScore));
        Assert.Equal(30, result.Cost.Nfe);
        Assert.Equal(30, estimate.Nfe);
        Assert.True(estimate.Exact);
    }

    [Fact]
    public async Task Generate_DfsThresholdZero_IsUsedAsZeroNotAsTheDefault()
    {
        // count-verifier scores are probabilities, never below 0: a threshold of 0 never backtracks. The default (0.5)
        // does here, so a 0 read as "default" would spend more than N.
        static GenerateRequest Request()
        {
            var request = NamedStrategyTests.Request();
            request.Condition = "1"; // its scores at step 2 are below the default threshold
            return request;
        }

        Dfs Dfs() => new() { EvaluateAt = { 2 }, RecurDepth = 2, MaxBacktracks = 3, PreviewSteps = 1 };
        var zero = Request();
        zero.Dfs = Dfs();
        zero.Dfs.Threshold = 0;
        var unset = Request();
        unset.Dfs = Dfs();
        var named = Request();
        named.Named = Named("dfs", """{"evaluate_at": [2], "recur_depth": 2, "max_backtracks": 3, "threshold": 0, "preview_steps": 1}""");

        var atZero = await Client.GenerateAsync(zero);
        var atDefault = await Client.GenerateAsync(unset);
        var byName = await Client.GenerateAsync(named);

        Assert.Equal(10, atZero.Cost.Nfe);
        Assert.Equal(10, byName.Cost.Nfe);
        Assert.True(atDefault.Cost.Nfe > 10, $"the default threshold spent {atDefault.Cost.Nfe}");
    }

    [Fact]
    public async Task Generate_UnknownName_IsInvalidArgumentListingTheRegisteredStrategies()
    {
        var request = Request();
        request.Named = Named("beam", "{}");

        var ex = await Assert.ThrowsAsync<RpcException>(() => Client.GenerateAsync(request).ResponseAsync);

        Assert.Equal(StatusCode.InvalidArgument, ex.StatusCode);
        Assert.Equal("strategy: unknown strategy 'beam'; use one of: best_of_n, shared_prefix, bfs, dfs, search_over_paths, zero_order, fk_steering, test_roots.", ex.Status.Detail);
    }

    [Fact]
    public async Task Generate_UnknownParameterOfANamedStrategy_IsInvalidArgumentNamingIt()
    {
        var request = Request();
        request.Named = Named(RootsStrategy.StrategyName, """{"width": 2}""");

        var ex = await Assert.ThrowsAsync<RpcException>(() => Client.GenerateAsync(request).ResponseAsync);

        Assert.Equal(StatusCode.InvalidArgument, ex.StatusCode);
        Assert.Equal("strategy.width: test_roots has no parameter 'width'; its parameters are: roots=2.", ex.Status.Detail);
    }

    [Fact]
    public async Task HttpJson_NamedStrategy_RunsThroughTranscoding()
    {
        using var http = new HttpClient { BaseAddress = server.Address };
        var body = """{"model":"counting","condition":"4","steps":10,"eta":0.5,"verifiers":["count-verifier"],"named":{"name":"test_roots","parameters":{"roots":2}}}""";

        using var response = await http.PostAsync("/api/v1/generate", new StringContent(body, System.Text.Encoding.UTF8, "application/json"));
        var json = await response.Content.ReadFromJsonAsync<JsonElement>();

        Assert.True(response.IsSuccessStatusCode, json.ToString());
        Assert.Equal("test_roots", json.GetProperty("strategy").GetString());
        Assert.Equal(20, json.GetProperty("cost").GetProperty("nfe").GetInt64());
    }

    [Fact]
    public async Task OpenAiImages_StrategyOfThePlugInKind_IsChosenByName()
    {
        using var http = new HttpClient { BaseAddress = server.Address };
        var body = """{"model":"counting","prompt":"4","n":2,"num_inference_steps":10,"eta":0.5,"strategy":"test_roots","strategy_params":{"roots":2},"verifiers":["count-verifier"]}""";

        using var response = await http.PostAsync("/v1/images/generations", new StringContent(body, System.Text.Encoding.UTF8, "application/json"));
        var json = await response.Content.ReadFromJsonAsync<JsonElement>();

        Assert.True(response.IsSuccessStatusCode, json.ToString());
        var search = json.GetProperty("search");
        Assert.Equal("test_roots", search.GetProperty("strategy").GetString());
        Assert.Equal(20, search.GetProperty("cost").GetProperty("nfe").GetInt64());
        Assert.Equal(2, json.GetProperty("data").GetArrayLength());
    }
}
