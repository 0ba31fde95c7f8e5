using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using SearchOrchestrator.Protos.V1;
using SearchClient = SearchOrchestrator.Protos.V1.Search.SearchClient;

namespace SearchOrchestrator.Server.Tests.Strategies;

/// <summary>
/// For every built-in strategy under η = 0 and η &gt; 0, over real gRPC: <c>Estimate</c>, the server's
/// <c>MaxNfePerRequest</c> admission and the search <c>Generate</c> runs agree on NFE: exactly where the plan is
/// exact, within its bounds where it is a range.
/// </summary>
public sealed class StrategyCostAgreementTests(StrategyServerFixture server) : IClassFixture<StrategyServerFixture>
{
    private SearchClient Client => new(server.Channel);

    /// <summary>Strategy, its parameters (JSON), N, η, and whether a cap of 128 NFE admits it.</summary>
    public static TheoryData<string, string, int, double, bool> Cases()
    {
        var data = new TheoryData<string, string, int, double, bool>();
        foreach (var eta in new[] { 0.5, 0.0 })
        {
            data.Add("best_of_n", """{"n": 3}""", 12, eta, true);
            data.Add("shared_prefix", """{"fork_schedule": ["3:2", "8:3"]}""", 12, eta, true);
            data.Add("shared_prefix", """{"k": 3, "fork_at": 8, "renoise": 3}""", 12, eta, true);
            data.Add("shared_prefix", """{"k": 3}""", 10, eta, false); // fork_at auto calibrates first: thousands of NFE
            data.Add("bfs", """{"particles": 4, "evaluate_at": [4, 8], "mode": "prune", "width": 2}""", 12, eta, true);
            data.Add("bfs", """{"particles": 4, "evaluate_at": [4, 8], "temperature": 0.05}""", 12, eta, true);
            data.Add("dfs", """{"evaluate_at": [4, 8], "threshold": 0.9, "recur_depth": 3, "max_backtracks": 4}""", 12, eta, true);
            data.Add("search_over_paths", """{"candidates": 2, "continuations": 2, "start_step": 4, "forward": 2, "backward": 4}""", 12, eta, true);
            data.Add("zero_order", """{"neighbours": 2, "iterations": 2}""", 12, eta, true);
            data.Add("fk_steering", """{"particles": 4, "resample_every": 3, "lambda": 20}""", 12, eta, true);
            data.Add("bfs", """{"particles": 4, "evaluate_at": [4, 8], "mode": "prune", "width": 2, "preview_steps": 3}""", 12, eta, true);
            data.Add("dfs", """{"evaluate_at": [4, 8], "threshold": 0.9, "recur_depth": 3, "max_backtracks": 4, "preview_steps": 2}""", 12, eta, true);
            data.Add("dfs", """{"evaluate_at": [4, 8], "threshold": 0.9, "recur_depth": 1, "max_backtracks": 6, "escalate": true}""", 12, eta, true);
            data.Add("search_over_paths", """{"candidates": 2, "continuations": 2, "start_step": 4, "forward": 2, "backward": 4, "preview_steps": 3}""", 12, eta, true);
            data.Add("fk_steering", """{"particles": 4, "resample_every": 3, "lambda": 20, "preview_steps": 4}""", 12, eta, true);
            data.Add("bfs", """{"particles": 3, "evaluate_at": [4, 8], "temperature": 0.05, "renoise": 2}""", 12, eta, true);
            data.Add("fk_steering", """{"particles": 3, "resample_every": 4, "lambda": 20, "renoise": 2}""", 12, eta, true);
            data.Add("fk_steering", """{"particles": 4, "resample_every": 4, "lambda": 20, "resampling": "systematic"}""", 12, eta, true);
        }

        // The case the two old cost models disagreed on: k = 4 forked at 25 of 50 spends 4·25 + 25 = 125 under η > 0,
        // and 4 more under η = 0, where each child is renoised one step first.
        data.Add("shared_prefix", """{"k": 4, "fork_at": 25}""", 50, 0.5, true);
        data.Add("shared_prefix", """{"k": 4, "fork_at": 25}""", 50, 0.0, false);
        return data;
    }

    private static GenerateRequest Request(string strategy, string parameters, int steps, double eta) => new()
    {
        Model = "counting",
        Condition = "4",
        Steps = steps,
        Eta = eta,
        Seed = 7,
        Verifiers = { "count-verifier" },
        Named = new NamedStrategy { Name = strategy, Parameters = Struct.Parser.ParseJson(parameters) },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task EstimateAdmissionAndGenerate_BuiltInStrategy_AgreeOnNfe(string strategy, string parameters, int steps, double eta, bool admitted)
    {
        var request = Request(strategy, parameters, steps, eta);

        var estimate = await Client.EstimateAsync(request);
        var planned = estimate.Nfe + estimate.CalibrationNfe;

        Assert.Equal(admitted, planned <= StrategyServerFixture.NfeCap);
        if (!admitted)
        {
            var refused = await Assert.ThrowsAsync<RpcException>(() => Client.GenerateAsync(request).ResponseAsync);
            Assert.Equal(StatusCode.ResourceExhausted, refused.StatusCode);
            Assert.StartsWith($"this search may spend {planned} NFE", refused.Status.Detail);
            return;
        }

        var cost = (await Client.GenerateAsync(request)).Cost;
        Assert.InRange(cost.Nfe, estimate.NfeMin, estimate.Nfe);
        Assert.InRange(cost.NfeIndependent, estimate.NfeIndependentMin, estimate.NfeIndependent);
        Assert.InRange(cost.PreviewNfe, 0, estimate.PreviewNfe);
        if (estimate.Exact)
        {
            Assert.Equal(estimate.Nfe, cost.Nfe);
            Assert.Equal(estimate.NfeIndependent, cost.NfeIndependent);
            Assert.Equal(estimate.PreviewNfe, cost.PreviewNfe);
        }
    }

    [Fact]
    public async Task EstimateAndGenerate_RequestPreviewSteps_CountPreviewNfeInTheTotal()
    {
        var request = Request("bfs", """{"particles": 3, "evaluate_at": [4, 8], "mode": "prune", "width": 1}""", 12, 0.5);
        request.PreviewSteps = 3;

        var estimate = await Client.EstimateAsync(request);
        var cost = (await Client.GenerateAsync(request)).Cost;

        Assert.Equal(3 * (3 + 3), estimate.PreviewNfe);
        Assert.Equal((3 * 12) + estimate.PreviewNfe, estimate.Nfe);
        Assert.Equal(estimate.PreviewNfe, cost.PreviewNfe);
        Assert.Equal(estimate.Nfe, cost.Nfe);
    }

    [Theory]
    [InlineData(null, 3 * (3 + 3))] // unset: bfs's tuned default, 3 steps
    [InlineData(1, 0)]               // the request's j reaches a strategy that sets none: raw predictions
    [InlineData(0, 0)]               // 0 reads as 1, as before the field had presence
    [InlineData(2, 3 * (2 + 2))]
    public async Task EstimateAndGenerate_RequestPreviewStepsPresentOrNot_OverridesTheStrategysDefault(int? previewSteps, long previewNfe)
    {
        var request = Request("bfs", """{"particles": 3, "evaluate_at": [4, 8], "mode": "prune", "width": 1}""", 12, 0.5);
        if (previewSteps is { } j)
        {
            request.PreviewSteps = j;
        }

        var estimate = await Client.EstimateAsync(request);
        var cost = (await Client.GenerateAsync(request)).Cost;

        Assert.Equal((previewNfe, previewNfe), (estimate.PreviewNfe, cost.PreviewNfe));
        Assert.Equal((3 * 12) + previewNfe, cost.Nfe);
    }

    [Fact]
    public async Task Estimate_SharedPrefixK4At25Of50UnderEtaZero_Is129Exactly()
    {
        var estimate = await Client.EstimateAsync(Request("shared_prefix", """{"k": 4, "fork_at": 25}""", 50, 0.0));

        Assert.True(estimate.Exact);
        Assert.Equal(129, estimate.Nfe);
    }
}
