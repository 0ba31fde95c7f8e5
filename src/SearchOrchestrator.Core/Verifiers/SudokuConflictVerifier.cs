namespace SearchOrchestrator.Verifiers;

/// <summary>
/// The Sudoku conflict verifier: scores a grid −(rows, columns and boxes where a digit appears twice, blank cells no
/// digit can fill any more, plus givens filled with another digit when the condition is the puzzle text); other blank
/// cells are undecided, not violations (<see cref="Sudoku.Conflicts"/>). It judges what a masked node has committed — its state, with the still-masked
/// cells blank (<c>dfs</c> with <c>judge=state</c>) — so a search can backtrack as soon as a committed cell breaks a
/// constraint, which no later unmasking step can repair. On a complete grid it scores exactly as
/// <see cref="SudokuVerifier"/>.
/// </summary>
public sealed class SudokuConflictVerifier : IVerifier
{
    /// <summary>The registered name of this verifier.</summary>
    public const string VerifierName = "sudoku-conflicts";

    /// <inheritdoc />
    public string Name => VerifierName;

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
            scores[i] = -Sudoku.Conflicts(batch.Sample(i), puzzle);
        }

        return Task.FromResult(scores);
    }
}
