namespace SearchOrchestrator.Verifiers;

/// <summary>
/// The Sudoku constraint verifier: scores a grid −(violated row, column and box constraints), plus any given it changed
/// when the condition is the puzzle text, so a valid solution scores 0 (see <see cref="Sudoku.Check"/> for the solved
/// flag). A programmatic judge: it needs no model, and it scores partial x0-predictions as well as finished grids.
/// </summary>
public sealed class SudokuVerifier : IVerifier
{
    /// <summary>The registered name of this verifier.</summary>
    public const string VerifierName = "sudoku-constraints";

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
            scores[i] = -Sudoku.Check(batch.Sample(i), puzzle).Violations;
        }

        return Task.FromResult(scores);
    }
}
