using SearchOrchestrator.Tensors;
using SearchOrchestrator.Verifiers;

namespace SearchOrchestrator.Core.Tests.Verifiers;

public sealed class SudokuVerifierConflictsTests
{
    private const string Solution = "534678912672195348198342567859761423426853791713924856961537284287419635345286179";
    private const string Puzzle = "53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79";

    private static float[] Grid(string text) => [.. text.Select(c => c == '.' ? 0f : c - '0')];

    private static async Task<float> Score(string grid, string condition) =>
        (await SudokuVerifier.Conflicts().ScoreAsync(new VerifierBatch(new SampleShape(81), Grid(grid), [condition])))[0];

    [Fact]
    public async Task ScoreAsync_BlankCells_AreUndecidedNotViolations()
    {
        Assert.Equal(0f, await Score(new string('.', 81), string.Empty));
        Assert.Equal(0f, await Score(Puzzle, Puzzle));
        Assert.Equal(0f, await Score("." + Solution[1..], Puzzle));
    }

    [Fact]
    public async Task ScoreAsync_ADigitTwiceAmongFilledCells_CountsEachUnitItBreaksOnce()
    {
        // A third 5 in row 0 at cell 2 (column 2, box 0): row 0 and box 0 already hold a 5 at cell 0; column 2 holds none.
        var grid = Puzzle[..2] + "5" + Puzzle[3..];
        // A 5 in cell 10 as well: row 1 holds one at cell 14, box 0 counts once however often it repeats, column 1 holds none.
        var twice = grid[..10] + "5" + grid[11..];

        Assert.Equal(-2f, await Score(grid, string.Empty));
        Assert.Equal(-3f, await Score(twice, string.Empty));
    }

    [Fact]
    public async Task ScoreAsync_ABlankNoDigitCanFill_CountsAsBroken()
    {
        // Cell 0's row holds 1..8 and its column a 9: nothing fits there any more, though no digit repeats.
        var grid = ".12345678" + "9" + new string('.', 71);

        Assert.Equal(-1f, await Score(grid, string.Empty));
    }

    [Fact]
    public async Task ScoreAsync_ChangedGiven_CountsOnlyWhenFilledWithAnotherDigit()
    {
        var changed = "6" + Puzzle[1..];

        Assert.Equal(-1f - 2f, await Score(changed, Puzzle)); // the given, and the 6 twice in column 0 and box 0
        Assert.Equal(0f, await Score("." + Puzzle[1..], Puzzle));
    }

    [Fact]
    public async Task ScoreAsync_CompleteGrids_ScoreAsTheConstraintVerifier()
    {
        var swapped = Solution[..2] + Solution[3] + Solution[2] + Solution[4..];
        var other = Sudoku.Format(Sudoku.SolvedGrid(new Random(3)));
        var constraints = new SudokuVerifier();

        foreach (var (grid, condition) in new[] { (Solution, Puzzle), (swapped, string.Empty), (swapped, Puzzle), (other, Puzzle) })
        {
            var expected = (await constraints.ScoreAsync(new VerifierBatch(new SampleShape(81), Grid(grid), [condition])))[0];
            Assert.Equal(expected, await Score(grid, condition));
        }

        Assert.Equal(-4f, await Score(swapped, string.Empty));
    }
}
