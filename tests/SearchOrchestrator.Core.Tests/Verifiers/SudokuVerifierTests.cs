using SearchOrchestrator.Tensors;
using SearchOrchestrator.Verifiers;

namespace SearchOrchestrator.Core.Tests.Verifiers;

public sealed class SudokuVerifierTests
{
    private const string Solution = "534678912672195348198342567859761423426853791713924856961537284287419635345286179";
    private const string Puzzle = "53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79";

    private static float[] Grid(string text) => [.. text.Select(c => c == '.' ? 0f : c - '0')];

    private static Task<float[]> Score(string grid, string condition) =>
        new SudokuVerifier().ScoreAsync(new VerifierBatch(new SampleShape(81), Grid(grid), [condition]));

    /// <summary>The score of <see cref="SudokuVerifier.Conflicts"/>, which judges the committed cells and leaves blanks undecided.</summary>
    private static async Task<float> ConflictsScore(string grid, string condition) =>
        (await SudokuVerifier.Conflicts().ScoreAsync(new VerifierBatch(new SampleShape(81), Grid(grid), [condition])))[0];

    [Fact]
    public async Task ScoreAsync_Solution_ScoresZeroAndIsSolved()
    {
        Assert.Equal(new[] { 0f }, await Score(Solution, Puzzle));
        Assert.True(Sudoku.Check(Grid(Solution), Sudoku.Parse(Puzzle)).Solved);
    }

    [Fact]
    public async Task ScoreAsync_TwoCellsSwappedInARow_CountsTheTwoColumnsAndBoxesTheyBreak()
    {
        // Swapping cells 2 and 3 (4 and 6) keeps row 0 valid but breaks columns 2 and 3 and boxes 0 and 1.
        var swapped = Solution[..2] + Solution[3] + Solution[2] + Solution[4..];

        Assert.Equal(new[] { -4f }, await Score(swapped, string.Empty));
        Assert.Equal(new SudokuCheck(4, false), Sudoku.Check(Grid(swapped)));
    }

    [Fact]
    public async Task ScoreAsync_ChangedGiven_CountsItWhenTheConditionIsThePuzzle()
    {
        var other = Sudoku.Format(Sudoku.SolvedGrid(new Random(3)));

        var withPuzzle = await Score(other, Puzzle);
        var withoutPuzzle = await Score(other, string.Empty);

        Assert.Equal(new[] { 0f }, withoutPuzzle);
        Assert.Equal(-Enumerable.Range(0, 81).Count(i => Puzzle[i] != '.' && Puzzle[i] != other[i]), withPuzzle[0]);
    }

    [Fact]
    public async Task ScoreAsync_BlankCells_ViolateTheirUnits()
    {
        Assert.Equal(new[] { -27f }, await Score(new string('.', 81), string.Empty));
        Assert.Equal(new[] { -3f }, await Score("." + Solution[1..], string.Empty));
    }

    [Fact]
    public async Task ScoreAsync_NotAGrid_NamesTheShape()
    {
        var ex = await Assert.ThrowsAsync<InvalidRequestException>(() => new SudokuVerifier().ScoreAsync(new VerifierBatch(new SampleShape(1, 24, 24), new float[576], ["7"])));

        Assert.Contains("[1, 24, 24]", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(40)]
    [InlineData(26)]
    public void Dig_FromASolvedGrid_LeavesAUniquePuzzleWithAboutTheGivens(int givens)
    {
        var random = new Random(11);
        var solution = Sudoku.SolvedGrid(random);

        var puzzle = Sudoku.Dig(solution, givens, random);

        Assert.True(Sudoku.Check([.. solution.Select(d => (float)d)]).Solved);
        Assert.Equal(1, Sudoku.CountSolutions(puzzle, 2));
        Assert.InRange(puzzle.Count(d => d != 0), givens, givens + 6);
        Assert.All(Enumerable.Range(0, 81).Where(i => puzzle[i] != 0), i => Assert.Equal(solution[i], puzzle[i]));
    }

    [Fact]
    public void Parse_WrongLengthOrCharacter_SaysWhat()
    {
        Assert.Contains("exactly 81 characters", Assert.Throws<InvalidRequestException>(() => Sudoku.Parse("123")).Message, StringComparison.Ordinal);
        Assert.Contains("character 'a' at position 1", Assert.Throws<InvalidRequestException>(() => Sudoku.Parse("5a" + Puzzle[2..])).Message, StringComparison.Ordinal);
        Assert.Equal(Puzzle, Sudoku.Format(Sudoku.Parse(Puzzle.Replace('.', '0'))));
    }

    [Fact]
    public async Task ConflictsScoreAsync_BlankCells_AreUndecidedNotViolations()
    {
        Assert.Equal(0f, await ConflictsScore(new string('.', 81), string.Empty));
        Assert.Equal(0f, await ConflictsScore(Puzzle, Puzzle));
        Assert.Equal(0f, await ConflictsScore("." + Solution[1..], Puzzle));
    }

    [Fact]
    public async Task ConflictsScoreAsync_ADigitTwiceAmongFilledCells_CountsEachUnitItBreaksOnce()
    {
        // A third 5 in row 0 at cell 2 (column 2, box 0): row 0 and box 0 already hold a 5 at cell 0; column 2 holds none.
        var grid = Puzzle[..2] + "5" + Puzzle[3..];
        // A 5 in cell 10 as well: row 1 holds one at cell 14, box 0 counts once however often it repeats, column 1 holds none.
        var twice = grid[..10] + "5" + grid[11..];

        Assert.Equal(-2f, await ConflictsScore(grid, string.Empty));
        Assert.Equal(-3f, await ConflictsScore(twice, string.Empty));
    }

    [Fact]
    public async Task ConflictsScoreAsync_ABlankNoDigitCanFill_CountsAsBroken()
    {
        // Cell 0's row holds 1..8 and its column a 9: nothing fits there any more, though no digit repeats.
        var grid = ".12345678" + "9" + new string('.', 71);

        Assert.Equal(-1f, await ConflictsScore(grid, string.Empty));
    }

    [Fact]
    public async Task ConflictsScoreAsync_ChangedGiven_CountsOnlyWhenFilledWithAnotherDigit()
    {
        var changed = "6" + Puzzle[1..];

        Assert.Equal(-1f - 2f, await ConflictsScore(changed, Puzzle)); // the given, and the 6 twice in column 0 and box 0
        Assert.Equal(0f, await ConflictsScore("." + Puzzle[1..], Puzzle));
    }

    [Fact]
    public async Task ConflictsScoreAsync_CompleteGrids_ScoreAsTheConstraintVerifier()
    {
        var swapped = Solution[..2] + Solution[3] + Solution[2] + Solution[4..];
        var other = Sudoku.Format(Sudoku.SolvedGrid(new Random(3)));
        var constraints = new SudokuVerifier();

        foreach (var (grid, condition) in new[] { (Solution, Puzzle), (swapped, string.Empty), (swapped, Puzzle), (other, Puzzle) })
        {
            var expected = (await constraints.ScoreAsync(new VerifierBatch(new SampleShape(81), Grid(grid), [condition])))[0];
            Assert.Equal(expected, await ConflictsScore(grid, condition));
        }

        Assert.Equal(-4f, await ConflictsScore(swapped, string.Empty));
    }
}
