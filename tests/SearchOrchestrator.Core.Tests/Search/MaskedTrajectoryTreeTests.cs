using SearchOrchestrator.Core.Tests.TestDoubles;
using SearchOrchestrator.Processes;
using SearchOrchestrator.Search;
using SearchOrchestrator.Strategies;
using SearchOrchestrator.Tensors;
using SearchOrchestrator.Verifiers;

namespace SearchOrchestrator.Core.Tests.Search;

/// <summary>The trajectory tree, its cost account and every strategy on the masked process.</summary>
public sealed class MaskedTrajectoryTreeTests : IAsyncDisposable
{
    private const int Length = 8;

    private readonly FixedLogitsDenoiser _denoiser = new(Table());
    private readonly SearchEngine _engine;

    public MaskedTrajectoryTreeTests() => _engine = new SearchEngine(new FakeModels(_denoiser, new TokenCountVerifier()));

    public ValueTask DisposeAsync() => _engine.DisposeAsync();

    // Every position: p(a) ≈ 0.38, p(b) ≈ 0.62, with slightly rising confidence to the right (a known order).
    private static float[,] Table()
    {
        var table = new float[Length, 3];
        for (var p = 0; p < Length; p++)
        {
            table[p, 2] = 0.5f + (0.01f * p);
        }

        return table;
    }

    private TrajectoryTree Tree(double temperature = 1.0, TokenPrompt? prompt = null, string condition = "", long? maxNfe = null, int steps = 4, string remask = RemaskNames.Confidence) =>
        _engine.CreateTree(new SearchRequest
        {
            Model = _denoiser.Description.Name,
            Condition = condition,
            Steps = steps,
            Seed = 3,
            Sampler = MaskedProcess.DefaultSettings.With(SamplerParameters.Temperature, temperature).With(SamplerParameters.Remask, remask),
            Prompt = prompt,
            Strategy = new BestOfNStrategy(1),
            Verifiers = ["token-count"],
            Budget = new SearchBudget { MaxNfe = maxNfe },
        });

    private static float[] Tokens(Node node) => node.State.Span[..Length].ToArray();

    [Fact]
    public async Task Advance_GreedyConfidence_UnmasksTwoPerStepRightToLeftAndCostsOneNfePerStep()
    {
        var tree = Tree(temperature: 0);
        var root = tree.CreateRoot();
        var masked = new List<int>();
        for (var step = 1; step <= 4; step++)
        {
            await tree.AdvanceAsync(root, step);
            masked.Add(Tokens(root).Count(t => t == 0));
        }

        Assert.Equal([6, 4, 2, 0], masked);
        Assert.All(Tokens(root), t => Assert.Equal(2f, t));
        Assert.Equal(4, tree.Nfe);
        Assert.Equal(4, _denoiser.Rows);
    }

    [Fact]
    public async Task Fork_StochasticSampler_ChildrenStartEqualDrawDifferentTokensAndShareThePrefixCost()
    {
        var tree = Tree(temperature: 1.0);
        var root = tree.CreateRoot();
        await tree.AdvanceAsync(root, 1);

        var children = tree.Fork(root, 3);

        Assert.All(children, c => Assert.Equal(root.State.ToArray(), c.State.ToArray()));
        await tree.AdvanceAsync(children, 4);
        Assert.True(children.Select(c => string.Join(',', Tokens(c))).Distinct().Count() > 1);
        var account = tree.Account();
        Assert.Equal(1 + (3 * 3), account.Nfe);
        Assert.Equal(3 * 4, account.NfeIndependent);
    }

    [Fact]
    public async Task Fork_DeterministicSampler_ReMasksEachChildDifferently()
    {
        var tree = Tree(temperature: 0);
        var root = tree.CreateRoot();
        await tree.AdvanceAsync(root, 3);

        var children = tree.Fork(root, 3);

        Assert.All(children, c => Assert.Equal(2, c.StepIndex));
        Assert.All(children, c => Assert.Equal(4, Tokens(c).Count(t => t == 0)));
        Assert.Equal(3, children.Select(c => string.Join(',', Tokens(c))).Distinct().Count());
    }

    [Fact]
    public async Task Renoise_NeverMasksClampedPositions_AndReAdvancingCostsItsSteps()
    {
        var tree = Tree(prompt: new TokenPrompt([1, 0, 0, 0, 0, 0, 0, 1]), remask: RemaskNames.Random);
        var root = tree.CreateRoot();
        await tree.AdvanceAsync(root, 4);

        var back = tree.Renoise(root, 0);

        Assert.Equal([1f, 0, 0, 0, 0, 0, 0, 1f], Tokens(back));
        var halfway = tree.Renoise(root, 2);
        Assert.Equal(3, Tokens(halfway).Count(t => t == 0)); // round(6 maskable · 1/2)
        Assert.Equal(1f, Tokens(halfway)[0]);
        Assert.Equal(1f, Tokens(halfway)[7]);
        await tree.AdvanceAsync([back, halfway], 4);
        Assert.Equal(4 + 4 + 2, tree.Nfe);
        Assert.All(new[] { back, halfway }, n => Assert.Equal([1f, 1f], new[] { Tokens(n)[0], Tokens(n)[7] }));
    }

    [Fact]
    public async Task Renoise_LeastConfident_ReMasksTheLastUnmaskedUnderGreedyConfidence()
    {
        var tree = Tree(temperature: 0);
        var root = tree.CreateRoot();
        await tree.AdvanceAsync(root, 4);

        var back = tree.Renoise(root, 3);

        // Positions were revealed right to left (rising confidence), so the two least confident are 0 and 1.
        Assert.Equal([0f, 0f, 2f, 2f, 2f, 2f, 2f, 2f], Tokens(back));
    }

    [Fact]
    public async Task Search_PuzzleTextCondition_ClampsItsTokensAndVerifiersSeeTheText()
    {
        var request = new SearchRequest
        {
            Model = _denoiser.Description.Name,
            Condition = "a.a....b",
            Steps = 4,
            Seed = 9,
            Sampler = MaskedProcess.DefaultSettings.With(SamplerParameters.Temperature, 1.0),
            Strategy = new BestOfNStrategy(4),
            Verifiers = ["token-count"],
            Candidates = 4,
        };

        var result = await _engine.RunAsync(request);

        Assert.Equal(4, result.Candidates.Count);
        Assert.All(result.Candidates, c =>
        {
            Assert.Equal(Length, c.Sample.Length);
            Assert.Equal([1f, 1f, 2f], new[] { c.Sample[0], c.Sample[2], c.Sample[7] });
            Assert.DoesNotContain(0f, c.Sample);
        });
        Assert.Equal(16, result.Cost.Nfe);
    }

    [Theory]
    [InlineData(StrategyNames.BestOfN)]
    [InlineData(StrategyNames.SharedPrefix)]
    [InlineData(StrategyNames.Bfs)]
    [InlineData(StrategyNames.Dfs)]
    [InlineData(StrategyNames.SearchOverPaths)]
    [InlineData(StrategyNames.ZeroOrder)]
    [InlineData(StrategyNames.FkSteering)]
    public async Task Strategy_OnTheMaskedProcess_FinishesWithinBudgetAndCountsEveryStep(string name)
    {
        var parameters = name switch
        {
            StrategyNames.SharedPrefix => new Dictionary<string, string> { ["fork_at"] = "2" },
            StrategyNames.SearchOverPaths => new Dictionary<string, string> { ["backward"] = "2" }, // the N/5 default equals forward at N = 8
            _ => [],
        };
        var result = await _engine.RunAsync(new SearchRequest
        {
            Model = _denoiser.Description.Name,
            Condition = string.Empty,
            Steps = 8,
            Seed = 5,
            Sampler = MaskedProcess.DefaultSettings.With(SamplerParameters.Temperature, 1.0),
            Strategy = StrategyCatalog.BuiltIn.Create(name, parameters, 8),
            Verifiers = ["token-count"],
            Budget = new SearchBudget { MaxNfe = 200 },
        });

        var best = Assert.Single(result.Candidates);
        Assert.True(best.Complete);
        Assert.DoesNotContain(0f, best.Sample);
        Assert.InRange(result.Cost.Nfe, 8, 200);
        Assert.Equal(result.Cost.Nfe, _denoiser.Rows);
    }

    [Fact]
    public async Task Verify_WithPreview_ScoresTheGreedyFillInAndLeavesTheNodeAsItWas()
    {
        var tree = Tree(temperature: 1.0);
        var root = tree.CreateRoot();
        await tree.AdvanceAsync(root, 1);
        var before = Tokens(root);

        await tree.VerifyAsync([root], previewSteps: 3);

        // The greedy fill-in takes the most likely token, b (id 2), wherever step 1 left a mask; 3 steps to the end.
        Assert.Equal(before, Tokens(root));
        Assert.Equal(1, root.StepIndex);
        Assert.Equal(before.Count(t => t is 0 or 2), root.Score);
        Assert.Equal(3, tree.Account().PreviewNfe);
        Assert.Equal(1 + 3, tree.Nfe);
    }

    [Fact]
    public async Task VerifyStates_ScoresTheCommittedTokensWithTheMasksBlankAndSpendsNoNfe()
    {
        var tree = Tree(temperature: 0);
        var root = tree.CreateRoot();
        await tree.AdvanceAsync(root, 1);

        await tree.VerifyStatesAsync([root]);
        var state = root.Score;
        await tree.VerifyAsync([root]);

        // Step 1 of 4 commits two b's; the x0-prediction fills the other six masks with b as well.
        Assert.Equal((2.0, 8.0), (state!.Value, root.Score!.Value));
        Assert.Equal(1, tree.Nfe);
        Assert.Equal((0L, 2L), (tree.Account().PreviewNfe, tree.Account().VerifierCalls));
    }

    [Theory]
    [InlineData(DfsJudge.Prediction, 8, 2 + 1)]
    [InlineData(DfsJudge.State, 8 + (3 * 2), 2 + 3 + 1)]
    public async Task Dfs_Judge_BacktracksOnlyWhenWhatItJudgesIsBelowTheThreshold(DfsJudge judge, long nfe, long verifierCalls)
    {
        // Greedy decoding of eight b's, one per step: at steps 2 and 4 the prediction holds eight (above 5) but the state
        // only two and four (below), so judging the state spends all three backtracks of two steps at step 2.
        var result = await _engine.RunAsync(new SearchRequest
        {
            Model = _denoiser.Description.Name,
            Condition = string.Empty,
            Steps = 8,
            Seed = 5,
            Sampler = MaskedProcess.DefaultSettings.With(SamplerParameters.Temperature, 0),
            Strategy = new DfsStrategy([2, 4], Threshold: 5, RecurDepth: 2, MaxBacktracks: 3, PreviewSteps: judge == DfsJudge.Prediction ? 1 : null, Judge: judge),
            Verifiers = ["token-count"],
        });

        Assert.Equal((nfe, verifierCalls), (result.Cost.Nfe, result.Cost.VerifierCalls));
        Assert.Equal(8.0, result.Candidates[0].Score);
    }

    [Fact]
    public async Task Dfs_JudgeState_TakesNoPreviewEvenWhenTheRequestAsksForThem()
    {
        var request = new SearchRequest
        {
            Model = _denoiser.Description.Name,
            Condition = string.Empty,
            Steps = 8,
            Seed = 5,
            Sampler = MaskedProcess.DefaultSettings.With(SamplerParameters.Temperature, 1.0),
            PreviewSteps = 3,
            Strategy = new DfsStrategy([2, 4], Threshold: 100, RecurDepth: 2, MaxBacktracks: 3, Judge: DfsJudge.State),
            Verifiers = ["token-count"],
        };

        var result = await _engine.RunAsync(request);

        Assert.Equal(8 + (3 * 2), result.Cost.Nfe);
        Assert.Equal(0, result.Cost.PreviewNfe);
        Assert.Equal(new NfeRange(0, 0), request.Strategy.Plan(request.ToPlanContext()).PreviewNfe);
    }

    [Fact]
    public void CreateRoot_SecondRootUnderGreedyDecoding_IsRefusedRatherThanDuplicated()
    {
        var tree = Tree(temperature: 0);
        var root = tree.CreateRoot();

        var second = Assert.Throws<InvalidRequestException>(() => tree.CreateRoot());
        var fork = Assert.Throws<InvalidRequestException>(() => tree.Fork(root, 2));

        Assert.Equal("sampler", second.Argument);
        Assert.Contains("duplicate a trajectory", second.Message, StringComparison.Ordinal);
        Assert.Contains("cannot fork a root", fork.Message, StringComparison.Ordinal);
        var sampled = Tree(temperature: 0.5);
        sampled.CreateRoot();
        sampled.CreateRoot();
        Assert.Equal(2, sampled.Roots.Count);
    }

    [Fact]
    public void CreateTree_EtaForAMaskedModel_IsRejected()
    {
        var ex = Assert.Throws<InvalidRequestException>(() => _engine.Validate(new SearchRequest
        {
            Model = _denoiser.Description.Name,
            Condition = string.Empty,
            Steps = 4,
            Eta = 0.5,
            Strategy = new BestOfNStrategy(1),
        }));

        Assert.Equal("eta", ex.Argument);
    }

    /// <summary>Scores a token sequence by how many of its tokens are 'b' (id 2).</summary>
    private sealed class TokenCountVerifier : IVerifier
    {
        public string Name => "token-count";

        public Task<float[]> ScoreAsync(VerifierBatch batch, CancellationToken cancellationToken = default)
        {
            Assert.Equal(new SampleShape(Length), batch.Shape);
            return Task.FromResult(Enumerable.Range(0, batch.Count).Select(i => (float)batch.Sample(i).ToArray().Count(t => t == 2)).ToArray());
        }
    }
}
