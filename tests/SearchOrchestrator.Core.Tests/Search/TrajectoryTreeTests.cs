using SearchOrchestrator.Core.Tests.TestDoubles;
using SearchOrchestrator.Scheduling;
using SearchOrchestrator.Search;
using SearchOrchestrator.Strategies;

namespace SearchOrchestrator.Core.Tests.Search;

public sealed class TrajectoryTreeTests : IAsyncDisposable
{
    private readonly SearchEngine _engine = new(new FakeModels(new GaussianDataDenoiser(new(0, 1)), new MeanVerifier()));

    public ValueTask DisposeAsync() => _engine.DisposeAsync();

    private TrajectoryTree Tree(double eta = 0.5, long? maxNfe = null) => _engine.CreateTree(new SearchRequest
    {
        Model = "gaussian-data",
        Condition = "1",
        Steps = 10,
        Eta = eta,
        Seed = 7,
        Strategy = new BestOfNStrategy(1),
        Verifiers = ["mean"],
        Budget = new SearchBudget { MaxNfe = maxNfe },
    });

    [Fact]
    public void Fork_NodeOfAnotherTreeThroughTheStrategyContract_IsRefused()
    {
        ISearchTree tree = Tree();
        var foreign = Tree().CreateRoot();
        tree.CreateRoot();

        var error = Assert.Throws<ArgumentException>(() => tree.Fork(foreign, 2));

        Assert.Equal("node", error.ParamName);
        Assert.StartsWith("node 0 (0) at step 0/10 is not a node of this search's tree.", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task CreateRoot_NeighbourOfAnAdvancedRoot_IsDrawnFromTheRootsStartingNoiseWithoutACopyOfIt()
    {
        var tree = Tree();
        var root = tree.CreateRoot();
        var start = root.State.ToArray();
        var twin = Tree();
        twin.CreateRoot();

        await tree.AdvanceAsync(root, 4);
        var neighbour = tree.CreateRoot(root, 0.9);
        var sameNeighbour = twin.CreateRoot(twin.Roots[0], 0.9); // drawn while that root is still at its starting noise

        Assert.Null(root.Prior); // the key gives the noise back
        Assert.NotNull(neighbour.Prior); // a neighbour's noise is not its key's: kept
        Assert.Equal(sameNeighbour.State.ToArray(), neighbour.State.ToArray());
        Assert.NotEqual(start, root.State.ToArray());
    }

    [Fact]
    public async Task Account_ThousandStepTrajectory_CountsEveryBatchItJoined()
    {
        // A minute's queue delay: each batch closes when both stepping roots are in it, never on the clock (with the 1 ms
        // default a root that came late on a loaded machine made a batch of its own).
        await using var engine = new SearchEngine(new FakeModels(new GaussianDataDenoiser(new(0, 1)), new MeanVerifier()), new BatchingOptions { MaxQueueDelay = TimeSpan.FromSeconds(60) });
        var tree = engine.CreateTree(new SearchRequest { Model = "gaussian-data", Condition = "1", Steps = 1000, Eta = 0.5, Seed = 7, Strategy = new BestOfNStrategy(1) });
        var roots = new[] { tree.CreateRoot(), tree.CreateRoot() };

        await tree.AdvanceAsync(roots, 1000).WaitAsync(TimeSpan.FromMinutes(2));

        var cost = tree.Account();
        Assert.Equal(1000, cost.Batches); // both roots step in one batch per step
        Assert.Equal(2.0, cost.MeanBatchSize);
    }

    [Fact]
    public async Task Fork_StochasticSampler_ChildrenStartEqualAndDivergeAfterOneStep()
    {
        var tree = Tree(eta: 0.5);
        var root = tree.CreateRoot();
        await tree.AdvanceAsync(root, 4);

        var children = tree.Fork(root, 2);

        Assert.All(children, c => Assert.Equal(root.State.ToArray(), c.State.ToArray()));
        Assert.All(children, c => Assert.Equal(4, c.StepIndex));
        await tree.AdvanceAsync(children, 5);
        Assert.NotEqual(children[0].State.ToArray(), children[1].State.ToArray());
        Assert.Equal(["0/0", "0/1"], children.Select(c => c.Path));
    }

    [Fact]
    public async Task Fork_DeterministicSampler_RenoisesChildrenSoTheyNeverDuplicate()
    {
        var tree = Tree(eta: 0);
        var root = tree.CreateRoot();
        await tree.AdvanceAsync(root, 4);

        var children = tree.Fork(root, 3);

        Assert.All(children, c => Assert.Equal(3, c.StepIndex));
        Assert.Equal(3, children.Select(c => string.Join(',', c.State.ToArray())).Distinct().Count());
        await tree.AdvanceAsync(children, 10);
        Assert.Equal(4 + (3 * 7), tree.Nfe);
        Assert.Equal(3, children.Select(c => string.Join(',', c.State.ToArray())).Distinct().Count());
    }

    [Fact]
    public async Task Fork_WithRenoiseUnderEta_ChildrenStartApartThatManyStepsBack()
    {
        var tree = Tree(eta: 0.5);
        var root = tree.CreateRoot();
        await tree.AdvanceAsync(root, 6);

        var children = tree.Fork(root, 3, renoiseSteps: 4);

        Assert.All(children, c => Assert.Equal(2, c.StepIndex));
        Assert.Equal(3, children.Select(c => string.Join(',', c.State.ToArray())).Distinct().Count());
        await tree.AdvanceAsync(children, 10);
        Assert.Equal(6 + (3 * 8), tree.Nfe);
    }

    [Fact]
    public void Fork_WithRenoisePastTheRoot_StopsAtStepZero()
    {
        var tree = Tree(eta: 0.5);
        var root = tree.CreateRoot();

        var children = tree.Fork(root, 2, renoiseSteps: 3);

        Assert.All(children, c => Assert.Equal(0, c.StepIndex));
        Assert.NotEqual(children[0].State.ToArray(), children[1].State.ToArray());
    }

    [Fact]
    public void Fork_DeterministicSamplerAtTheRoot_DrawsFreshPriorNoise()
    {
        var tree = Tree(eta: 0);
        var root = tree.CreateRoot();

        var children = tree.Fork(root, 2);

        Assert.All(children, c => Assert.Equal(0, c.StepIndex));
        Assert.NotEqual(children[0].State.ToArray(), children[1].State.ToArray());
        Assert.NotEqual(root.State.ToArray(), children[0].State.ToArray());
    }

    [Fact]
    public async Task Renoise_MovesBackAndCostsOnlyTheStepsAdvancedAgain()
    {
        var tree = Tree();
        var root = tree.CreateRoot();
        await tree.AdvanceAsync(root, 6);

        var retry = tree.Renoise(root, 3);
        Assert.Equal(3, retry.StepIndex);
        Assert.Same(root, retry.Parent);
        await tree.AdvanceAsync(retry, 10);

        Assert.Equal(6 + 7, tree.Nfe);
        Assert.Equal(6 + 7, retry.PathNfe);
        // The root stopped where the retry branched off: its path is a prefix, counted once.
        Assert.Equal(13, tree.Account().NfeIndependent);
    }

    [Fact]
    public async Task Account_ParentContinuingAfterAFork_CountsBothTrajectories()
    {
        var tree = Tree();
        var root = tree.CreateRoot();
        await tree.AdvanceAsync(root, 4);
        var child = tree.Renoise(root, 2);

        await tree.AdvanceAsync([root, child], 10);

        Assert.Equal(4 + 6 + 8, tree.Nfe);
        Assert.Equal(10 + (4 + 8), tree.Account().NfeIndependent);
    }

    [Fact]
    public async Task Prune_ReleasesTheSubtreeButKeepsItsCost()
    {
        var tree = Tree();
        var root = tree.CreateRoot();
        await tree.AdvanceAsync(root, 2);
        var children = tree.Fork(root, 2);
        await tree.AdvanceAsync(children, 5);

        tree.Prune(root);

        Assert.All([root, .. children], n => Assert.True(n.IsPruned));
        Assert.Throws<InvalidOperationException>(() => children[0].State);
        await Assert.ThrowsAsync<InvalidOperationException>(() => tree.AdvanceAsync(children[0], 6));
        Assert.Equal(2 + 6, tree.Nfe);
        Assert.Equal(10, tree.Account().NfeIndependent);
    }

    [Fact]
    public async Task AdvanceAsync_BudgetCoversSomeNodes_MovesThoseInOrderAndMarksLimited()
    {
        var tree = Tree(maxNfe: 25);
        var roots = Enumerable.Range(0, 3).Select(_ => tree.CreateRoot()).ToList();

        await tree.AdvanceAsync(roots, 10);

        Assert.Equal([10, 10, 0], roots.Select(r => r.StepIndex));
        Assert.Equal(20, tree.Nfe);
        Assert.True(tree.BudgetLimited);
        Assert.Equal(5, tree.NfeRemaining);
    }

    [Fact]
    public async Task VerifyAsync_NodeWithoutPrediction_Throws()
    {
        var tree = Tree();
        var root = tree.CreateRoot();

        await Assert.ThrowsAsync<InvalidOperationException>(() => tree.VerifyAsync([root]));
    }

    [Fact]
    public async Task VerifyAsync_ScoresThePredictionAndRecordsTheStep()
    {
        var tree = Tree();
        var root = tree.CreateRoot();
        await tree.AdvanceAsync(root, 10);

        await tree.VerifyAsync([root]);

        var mean = root.State.ToArray().Average();
        Assert.Equal(mean, root.Score!.Value, 5);
        Assert.Equal(10, root.ScoredAtStep);
        Assert.Equal((float)root.Score.Value, root.Scores["mean"]);
        Assert.Equal(1, tree.VerifierCalls);
    }

    [Fact]
    public async Task CreateRoot_NearAPivot_HasTheRequestedSimilarity()
    {
        var tree = _engine.CreateTree(new SearchRequest { Model = "gaussian-data", Condition = "1", Steps = 10, Strategy = new BestOfNStrategy(1) });
        var pivot = tree.CreateRoot();
        var prior = pivot.State.ToArray();
        await tree.AdvanceAsync(pivot, 10);

        var same = tree.CreateRoot(pivot, 1.0);
        var fresh = tree.CreateRoot(pivot, 0.0);

        Assert.Equal(prior, same.State.ToArray());
        Assert.NotEqual(prior, fresh.State.ToArray());
    }
}
