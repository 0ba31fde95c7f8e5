using SearchOrchestrator.Denoising;
using SearchOrchestrator.Processes;
using SearchOrchestrator.Verifiers;

namespace SearchOrchestrator.Cli.Commands;

/// <summary>
/// The defaults <c>generate</c> and <c>estimate</c> share with a gRPC request that leaves a field unset (steps 0 = 50,
/// guidance unset = 1, η 0, seed 0), so the same flags plan and spend the same NFE everywhere. The one difference:
/// the command line scores with the model's own verifier when none is named, where a request names its verifiers.
/// </summary>
internal static class CliDefaults
{
    public const int Steps = 50;

    public const double Guidance = 1.0;

    public const double Eta = 0.0;

    public const ulong Seed = 0;

    /// <summary>The verifier that fits <paramref name="model"/>: the Sudoku constraints for a masked model, the counter otherwise.</summary>
    public static string Verifier(DenoiserDescription model) =>
        model.Process is MaskedProcess ? SudokuVerifier.VerifierName : "count-verifier";
}
