using SearchOrchestrator.Verifiers;

namespace SearchOrchestrator.Core.Tests.Verifiers;

public sealed class VerifierEnsembleTests
{
    [Fact]
    public void Combine_OneVerifier_PassesScoresThrough()
    {
        Assert.Equal([(double)0.2f, -3.0], new VerifierEnsemble(["a"]).Combine([[0.2f, -3f]]));
    }

    [Fact]
    public void Combine_MeanRank_AveragesScaledRanksWithTiesShared()
    {
        var ensemble = new VerifierEnsemble(["a", "b"], EnsembleRule.MeanRank);

        var combined = ensemble.Combine([[1f, 2f, 3f], [10f, 10f, 0f]]);

        // a ranks 0, 0.5, 1; b ranks 0.75, 0.75, 0 (the two 10s share ranks 1 and 2 of 0..2).
        Assert.Equal([0.375, 0.625, 0.5], combined);
    }

    [Fact]
    public void Combine_WeightedSum_UsesWeightsDefaultingToOne()
    {
        var ensemble = new VerifierEnsemble(["a", "b"], EnsembleRule.WeightedSum, new Dictionary<string, double> { ["b"] = 0.5 });

        Assert.Equal([1 + 5.0, 2 + 0.0], ensemble.Combine([[1f, 2f], [10f, 0f]]));
    }

    [Fact]
    public void Constructor_WeightForAnotherVerifier_Throws()
    {
        var ex = Assert.Throws<InvalidRequestException>(() => new VerifierEnsemble(["a"], EnsembleRule.WeightedSum, new Dictionary<string, double> { ["c"] = 1 }));

        Assert.Equal("verifier_weights", ex.Argument);
    }
}
