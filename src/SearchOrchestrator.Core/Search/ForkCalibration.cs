using System.Collections.Concurrent;
using System.Globalization;
using SearchOrchestrator.Strategies;

namespace SearchOrchestrator.Search;

/// <summary>What calibration measured for one model and condition.</summary>
/// <param name="ForkStep">The latest grid step whose siblings keep at least the required share of the independent gain.</param>
/// <param name="Gain">Per grid step, the mean over probes of (best − mean) of the siblings' scores: what picking the best
/// of them gains over taking one. The step-0 entry is the gain of independent samples.</param>
/// <param name="Nfe">What the calibration spent.</param>
public sealed record ForkCalibrationResult(int ForkStep, IReadOnlyList<(int Step, double Gain)> Gain, long Nfe);

/// <summary>
/// <c>fork_at: auto</c>: finds, per model, condition and sampler settings, the latest step at which siblings forked
/// there still differ in verifier score. Probe trajectories (from a fixed calibration seed, so the answer does not
/// depend on the request seed or on batching) are forked at each step of a grid; siblings are finished and verified;
/// what choosing the best sibling gains over taking one (best − mean score) is compared with the same gain for
/// independent samples (a fork at step 0). The chosen step is the latest one keeping at least
/// <see cref="RetainedGain"/> of it: forking there keeps that share of best-of-k's improvement. Results are cached.
/// </summary>
public sealed class ForkCalibration
{
    /// <summary>The seed calibration probes are drawn from.</summary>
    public const ulong CalibrationSeed = 0xC0FFEE;

    private readonly SearchEngine _engine;
    private readonly ConcurrentDictionary<string, Lazy<Task<ForkCalibrationResult>>> _cache = new(StringComparer.Ordinal);

    internal ForkCalibration(SearchEngine engine) => _engine = engine;

    /// <summary>Probe trajectories per grid step. Default 16: fewer leave the per-condition gain estimate too noisy.</summary>
    public int Probes { get; init; } = 16;

    /// <summary>Siblings forked per probe and grid step. Default 4.</summary>
    public int Siblings { get; init; } = 4;

    /// <summary>Grid steps: 0, N/G, 2N/G, … Default 10.</summary>
    public int GridPoints { get; init; } = 10;

    /// <summary>The share of the independent samples' best-of gain (in verifier score) that siblings must keep. Default 0.85.</summary>
    public double RetainedGain { get; init; } = 0.85;

    /// <summary>The calibration for the request's model, condition, steps, guidance, η and verifiers (computed once).</summary>
    /// <returns>The result, and whether this call ran it (false when it came from the cache).</returns>
    public async Task<(ForkCalibrationResult Result, bool Ran)> GetAsync(SearchRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        var key = string.Join('|', request.Model, request.Condition, request.Steps, request.Guidance.ToString(CultureInfo.InvariantCulture), request.Eta.ToString(CultureInfo.InvariantCulture), request.Sampler?.ToString() ?? string.Empty, PromptKey(request.Prompt), string.Join(',', request.Verifiers), request.Ensemble);
        var ran = false;
        var entry = _cache.GetOrAdd(key, _ => new Lazy<Task<ForkCalibrationResult>>(() =>
        {
            ran = true;
            return MeasureAsync(request, CancellationToken.None);
        }));
        try
        {
            return (await entry.Value.WaitAsync(cancellationToken).ConfigureAwait(false), ran);
        }
        catch (Exception) when (entry.Value.IsFaulted)
        {
            _cache.TryRemove(key, out _);
            throw;
        }
    }

    private static string PromptKey(Processes.TokenPrompt? prompt) =>
        prompt is null ? string.Empty : $"{string.Join(',', prompt.Tokens)}/{(prompt.Clamped is null ? "*" : string.Join(',', prompt.Clamped))}";

    /// <summary>Runs the calibration without the cache.</summary>
    public async Task<ForkCalibrationResult> MeasureAsync(SearchRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        var probe = request with
        {
            Seed = CalibrationSeed,
            Strategy = new BestOfNStrategy(1),
            Budget = new SearchBudget(),
        };
        var tree = _engine.CreateTree(probe);
        if (tree.Verifiers.Count == 0)
        {
            throw new InvalidRequestException("verifiers", "fork_at: auto measures when siblings stop differing in verifier score, so it needs at least one verifier.");
        }

        try
        {
            var grid = Enumerable.Range(0, GridPoints).Select(g => g * request.Steps / GridPoints).Distinct().ToList();
            var roots = Enumerable.Range(0, Probes).Select(_ => tree.CreateRoot()).ToList();
            var gains = new double[grid.Count];
            for (var g = 0; g < grid.Count; g++)
            {
                await tree.AdvanceAsync(roots, grid[g], cancellationToken).ConfigureAwait(false);
                var families = roots.Select(r => tree.Fork(r, Siblings)).ToList();
                var siblings = families.SelectMany(f => f).ToList();
                await tree.AdvanceAsync(siblings, tree.Steps, cancellationToken).ConfigureAwait(false);
                await tree.VerifyAsync(siblings, cancellationToken).ConfigureAwait(false);
                gains[g] = families.Average(f => f.Max(n => n.Score!.Value) - f.Average(n => n.Score!.Value));
                siblings.ForEach(tree.Prune);
            }

            var required = RetainedGain * gains[0];
            var chosen = 0;
            for (var g = 0; g < grid.Count; g++)
            {
                if (gains[g] >= required && gains[g] > 0)
                {
                    chosen = grid[g];
                }
            }

            return new ForkCalibrationResult(chosen, [.. grid.Select((s, g) => (s, gains[g]))], tree.Nfe);
        }
        finally
        {
            tree.ReleaseAll();
        }
    }
}
