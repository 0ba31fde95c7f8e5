namespace SearchOrchestrator.Verifiers;

/// <summary>
/// The Sudoku verifiers: programmatic judges that need no model and score a grid −(the constraints it breaks), so a
/// valid solution scores 0 (see <see cref="Sudoku.Check"/> for the solved flag). Two are registered:
/// <list type="bullet">
/// <item><c>sudoku-constraints</c> (<c>new SudokuVerifier()</c>): violated row, column and box constraints of a
/// complete grid — a finished sample, an x0-prediction or a preview — plus any given it changed when the condition is
/// the puzzle text (<see cref="Sudoku.Check"/>).</item>
/// <item><c>sudoku-conflicts</c> (<see cref="Conflicts"/>): what a masked node has committed — its state, with the
/// still-masked cells blank (<c>dfs</c> with <c>judge=state</c>): rows, columns and boxes where a digit appears twice,
/// blanks no digit can fill any more, changed givens; other blanks are undecided, not violations
/// (<see cref="Sudoku.Conflicts"/>). A search can backtrack as soon as a committed cell breaks a constraint, which no
/// later unmasking step can repair. On a complete grid it scores exactly as <c>sudoku-constraints</c>.</item>
/// </list>
/// </summary>
public sealed class SudokuVerifier : IVerifier
{
    /// <summary>The registered name of the complete-grid verifier.</summary>
    public const string VerifierName = "sudoku-constraints";

    /// <summary>The registered name of the committed-cells verifier (<see cref="Conflicts"/>).</summary>
    public const string ConflictsName = "sudoku-conflicts";

    private readonly GridPenalty _penalty;

    /// <summary>The complete-grid verifier, <c>sudoku-constraints</c>.</summary>
    public SudokuVerifier()
        : this(VerifierName, (cells, puzzle) => Sudoku.Check(cells, puzzle).Violations)
    {
    }

    private SudokuVerifier(string name, GridPenalty penalty) => (Name, _penalty) = (name, penalty);

    private delegate int GridPenalty(ReadOnlySpan<float> cells, IReadOnlyList<int>? puzzle);

    /// <summary>The committed-cells verifier, <c>sudoku-conflicts</c>.</summary>
    public static SudokuVerifier Conflicts() => new(ConflictsName, Sudoku.Conflicts);

    /// <inheritdoc />
    public string Name { get; }

    /// <inheritdoc />
    public Task<float[]> ScoreAsync(VerifierBatch batch, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(batch);
        if (batch.Shape.ElementCount != Sudoku.Cells)
        {
            throw new InvalidRequestException("verifiers", $"verifier '{Name}' checks 9x9 Sudoku grids of {Sudoku.Cells} cells; this model's samples are [{string.Join(", ", batch.Shape.Dimensions)}].");
        }

        var scores = new float[batch.Count];
        for (var i = 0; i < batch.Count; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var condition = batch.Conditions[i];
            var puzzle = condition?.Length == Sudoku.Cells ? Sudoku.Parse(condition, "condition") : null;
            scores[i] = -_penalty(batch.Sample(i), puzzle);
        }

        return Task.FromResult(scores);
    }
}
