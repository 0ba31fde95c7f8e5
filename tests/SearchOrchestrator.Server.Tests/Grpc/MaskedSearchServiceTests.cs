using Grpc.Core;
using SearchOrchestrator.Processes;
using SearchOrchestrator.Protos.V1;
using MaskedSampler = SearchOrchestrator.Protos.V1.MaskedSampler;
using SearchClient = SearchOrchestrator.Protos.V1.Search.SearchClient;

namespace SearchOrchestrator.Server.Tests.Grpc;

/// <summary>The search service with the masked Sudoku model, over real gRPC on a loopback socket.</summary>
public sealed class MaskedSearchServiceTests(ServerFixture server) : IClassFixture<ServerFixture>
{
    private const string Puzzle = "53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79";

    private SearchClient Client => new(server.Channel);

    private static GenerateRequest Sudoku() => new()
    {
        Model = "sudoku",
        Condition = Puzzle,
        Steps = 10,
        Seed = 2,
        BestOfN = new BestOfN { N = 2 },
        Verifiers = { "sudoku-constraints" },
        MaskedSampler = new MaskedSampler { Temperature = 0.5 },
        Candidates = 2,
    };

    [Fact]
    public async Task ListModels_Sudoku_ShowsTheMaskedProcessVocabularyAndMaskId()
    {
        var response = await Client.ListModelsAsync(new ListModelsRequest());

        var sudoku = response.Models.Single(m => m.Name == "sudoku");
        Assert.True(sudoku.Ready, sudoku.Error);
        Assert.Equal("masked", sudoku.Process);
        Assert.Equal("logits", sudoku.Prediction);
        Assert.Equal([81], sudoku.SampleShape);
        Assert.Equal(10, sudoku.VocabularySize);
        Assert.True(sudoku.HasMaskId);
        Assert.Equal(0, sudoku.MaskId);
        Assert.Equal([".", "1", "2", "3", "4", "5", "6", "7", "8", "9"], sudoku.Vocabulary);
        Assert.Contains("sudoku-constraints", response.CodeVerifiers);
        Assert.False((await Client.GetModelAsync(new GetModelRequest { Name = "counting" })).HasMaskId);
    }

    [Fact]
    public async Task Generate_PuzzleText_ReturnsTokensAndTextKeepingTheGivensWithTheExactCost()
    {
        var response = await Client.GenerateAsync(Sudoku());

        Assert.Equal(20, response.Cost.Nfe);
        Assert.Equal(20, response.Cost.NfeIndependent);
        Assert.Equal(2, response.Cost.VerifierCalls); // the two finished grids, scored once
        Assert.Equal(2, response.Candidates.Count);
        foreach (var candidate in response.Candidates)
        {
            Assert.True(candidate.Complete);
            Assert.Equal(81, candidate.Tokens.Count);
            Assert.All(candidate.Tokens, t => Assert.InRange(t, 1, 9));
            Assert.Equal(string.Concat(candidate.Tokens.Select(t => (char)('0' + t))), candidate.Text);
            Assert.All(Enumerable.Range(0, 81).Where(i => Puzzle[i] != '.'), i => Assert.Equal(Puzzle[i], candidate.Text[i]));
            Assert.True(candidate.Score <= 0);
        }
    }

    [Fact]
    public async Task Generate_TokenIdsWithClampedPositions_KeepsThemAndIsDeterministic()
    {
        var request = Sudoku();
        request.Condition = string.Empty;
        request.Tokens.AddRange(Puzzle.Select(c => c == '.' ? 0 : c - '0'));
        request.Clamped.AddRange([0, 1, 4]);

        var first = await Client.GenerateAsync(request);
        var second = await Client.GenerateAsync(request);

        Assert.Equal(first.Candidates[0].Tokens, second.Candidates[0].Tokens);
        Assert.Equal([5, 3, 7], new[] { first.Candidates[0].Tokens[0], first.Candidates[0].Tokens[1], first.Candidates[0].Tokens[4] });
    }

    [Fact]
    public async Task Generate_DfsOnTheMaskedProcess_RunsWithoutSpecialCases()
    {
        var request = Sudoku();
        request.Dfs = new Dfs { EvaluateAt = { 5, 9 }, Threshold = -0.5, RecurDepth = 3, MaxBacktracks = 2, PreviewSteps = 1 };
        request.Candidates = 1;

        var response = await Client.GenerateAsync(request);

        Assert.Equal("dfs", response.Strategy);
        Assert.InRange(response.Cost.Nfe, 10, 10 + (2 * 3));
        Assert.True(response.Candidates[0].Complete);
    }

    [Fact]
    public async Task Generate_DfsJudgingStates_BacktracksOnCommittedCellsWithoutPreviews()
    {
        var request = Sudoku();
        request.Dfs = new Dfs { EvaluateAt = { 3, 6 }, Threshold = 100, RecurDepth = 2, MaxBacktracks = 4, Judge = "state" };
        request.Verifiers[0] = "sudoku-conflicts";
        request.PreviewSteps = 3; // judge=state takes none
        request.Candidates = 1;

        var response = await Client.GenerateAsync(request);

        // An unreachable threshold spends every backtrack at step 3: 10 steps plus four re-advances of two.
        Assert.Equal((10 + (4 * 2), 0L), (response.Cost.Nfe, response.Cost.PreviewNfe));
        Assert.Equal(2 + 4 + 1, response.Cost.VerifierCalls);
        Assert.True(response.Candidates[0].Complete);
    }

    [Fact]
    public async Task Generate_DfsEscalating_EachFailedRetryGoesBackTwiceAsFar()
    {
        var request = Sudoku();
        request.Dfs = new Dfs { EvaluateAt = { 3, 6 }, Threshold = 100, RecurDepth = 1, MaxBacktracks = 4, Judge = "state", Escalate = true };
        request.Verifiers[0] = "sudoku-conflicts";
        request.Candidates = 1;

        var response = await Client.GenerateAsync(request);

        // Every retry at step 3 fails: it goes back 1, 2, then 3 twice (no further than step 0).
        Assert.Equal(10 + 1 + 2 + 3 + 3, response.Cost.Nfe);
        Assert.True(response.Candidates[0].Complete);
    }

    [Theory]
    [InlineData("short", "condition: must have exactly 81 characters")]
    [InlineData("character", "condition: character 'x' at position 3")]
    [InlineData("token", "tokens: token id 12 at position 2 is out of range; ids run from 0 to 9")]
    [InlineData("long", "tokens: the prompt has 82 tokens but the model's sequence holds 81")]
    [InlineData("clamped", "clamped: clamped position 2 holds the mask")]
    [InlineData("eta", "eta: eta applies to gaussian models")]
    [InlineData("temperature", "masked_sampler.temperature: temperature must be 0")]
    [InlineData("policy", "masked_sampler.policy: unknown unmasking policy 'premises-first'")]
    [InlineData("steps", "steps: steps must be between 1 and 81")]
    [InlineData("png", "include_png: model 'sudoku' is a masked model: its candidates are tokens")]
    [InlineData("judge", "strategy.judge: dfs: judge must be prediction or state, got 'states'")]
    [InlineData("greedy", "masked_sampler: cannot start a second root: the masked(temperature=0, policy=confidence, remask=confidence) sampler is deterministic")]
    public async Task Generate_BadMaskedField_FailsWithInvalidArgumentNamingIt(string field, string message)
    {
        var request = Sudoku();
        switch (field)
        {
            case "short": request.Condition = "53..7"; break;
            case "character": request.Condition = "53.x" + Puzzle[4..]; break;
            case "token": request.Tokens.AddRange([1, 2, 12]); break;
            case "long": request.Tokens.AddRange(Enumerable.Repeat(1, 82)); break;
            case "clamped": request.Tokens.AddRange([1, 2, 0]); request.Clamped.Add(2); break;
            case "eta": request.MaskedSampler = null; request.Eta = 0.5; break;
            case "temperature": request.MaskedSampler.Temperature = -1; break;
            case "policy": request.MaskedSampler.Policy = "premises-first"; break;
            case "greedy": request.MaskedSampler.Temperature = 0; break;
            case "png": request.IncludePng = true; break;
            case "judge": request.Dfs = new Dfs { Judge = "states" }; break;
            default: request.Steps = 100; break;
        }

        var ex = await Assert.ThrowsAsync<RpcException>(() => Client.GenerateAsync(request).ResponseAsync);

        Assert.Equal(StatusCode.InvalidArgument, ex.StatusCode);
        Assert.Contains(message, ex.Status.Detail);
    }
}
