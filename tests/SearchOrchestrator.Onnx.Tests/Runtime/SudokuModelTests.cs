using SearchOrchestrator.Denoising;
using SearchOrchestrator.Processes;
using SearchOrchestrator.Search;
using SearchOrchestrator.Strategies;
using SearchOrchestrator.Verifiers;

namespace SearchOrchestrator.Onnx.Tests.Runtime;

/// <summary>The shipped masked-diffusion Sudoku model through ONNX Runtime.</summary>
public sealed class SudokuModelTests(SharedRepository shared) : IClassFixture<SharedRepository>
{
    // A solved grid, and the same grid with three blanks that the givens pin down (naked singles).
    private const string Solution = "534678912672195348198342567859761423426853791713924856961537284287419635345286179";
    private const string ThreeBlanks = ".346789126721953481983425678597614234268.379171392485696153728428741963534528617.";

    private readonly IDenoiser _sudoku = shared.Repository.GetDenoiser("sudoku");

    [Fact]
    public void Description_FromManifest_IsAMaskedProcessOverDigits()
    {
        var d = _sudoku.Description;

        var process = Assert.IsType<MaskedProcess>(d.Process);
        Assert.Equal("81", d.SampleShape.ToString());
        Assert.Equal(81, process.SequenceLength);
        Assert.Equal(10, process.VocabularySize);
        Assert.Equal(0, process.MaskId);
        Assert.Equal(810, d.OutputElements);
        Assert.Equal(162, d.StateElements);
        Assert.True(d.Conditions.IsFreeText);
    }

    [Fact]
    public async Task PredictAsync_RealForwardPass_GivesFiniteLogitsPerPositionIndependentOfTheBatch()
    {
        var process = (MaskedProcess)_sudoku.Description.Process;
        var a = process.Parse(ThreeBlanks, "puzzle").Tokens.Select(t => (float)t).ToArray();
        var b = new float[81]; // all masked
        var both = new float[2 * 810];
        await _sudoku.PredictAsync(new DenoiserBatch(2, (float[])[.. a, .. b], new float[] { 3f / 81, 1f }, new long[2]), both);
        var alone = new float[810];
        await _sudoku.PredictAsync(new DenoiserBatch(1, a, new float[] { 3f / 81 }, new long[1]), alone);

        Assert.All(both, v => Assert.True(float.IsFinite(v)));
        for (var k = 0; k < 810; k++)
        {
            Assert.Equal(alone[k], both[k], 4);
        }
    }

    [Fact]
    public async Task Search_ThreeBlanks_FillsThemWithTheSolution()
    {
        await using var engine = new SearchEngine(new ModelCatalogForTests(shared.Repository, new SudokuVerifier()));

        var result = await engine.RunAsync(new SearchRequest
        {
            Model = "sudoku",
            Condition = ThreeBlanks,
            Steps = 3,
            Strategy = new BestOfNStrategy(1),
            Verifiers = [SudokuVerifier.VerifierName],
        });

        var best = Assert.Single(result.Candidates);
        Assert.Equal(Solution, ((MaskedProcess)_sudoku.Description.Process).Decode(best.Sample));
        Assert.Equal(0, best.Score);
        Assert.Equal(3, result.Cost.Nfe);
    }

    /// <summary>The repository's denoisers with a code verifier beside them.</summary>
    private sealed class ModelCatalogForTests(SearchOrchestrator.Onnx.Repository.ModelRepository repository, IVerifier verifier) : IModelProvider
    {
        public IDenoiser GetDenoiser(string name) => repository.GetDenoiser(name);

        public IVerifier GetVerifier(string name) => name == verifier.Name ? verifier : repository.GetVerifier(name);
    }
}
