using System.Globalization;
using Microsoft.Extensions.Caching.Memory;

namespace SearchOrchestrator.Search;

/// <summary>What calibration measured for one model and condition.</summary>
/// <param name="ForkStep">The latest grid step whose siblings keep at least the required share of the independent gain.</param>
/// <param name="Gain">Per grid step, the mean over probes of (best − mean) of the siblings' scores: what picking the best
/// of them gains over taking one. The step-0 entry is the gain of independent samples.</param>
/// <param name="Nfe">What the calibration spent.</param>
internal sealed record ForkCalibrationResult(int ForkStep, IReadOnlyList<(int Step, double Gain)> Gain, long Nfe);

/// <summary>
/// <c>fork_at: auto</c>: finds, per model, condition and sampler settings, the latest step at which siblings forked
/// there still differ in verifier score. Probe trajectories (from a fixed calibration seed, so the answer does not
/// depend on the request seed or on batching) are forked at each step of a grid; siblings are finished and verified;
/// what choosing the best sibling gains over taking one (best − mean score) is compared with the same gain for
/// independent samples (a fork at step 0). The chosen step is the latest one keeping at least
/// <see cref="RetainedGain"/> of it: forking there keeps that share of best-of-k's improvement.
/// A calibration is part of the plan of the request that runs it: its NFE (<see cref="PlannedNfe"/>, exact) is
/// admitted and budgeted with the request's own. Requests of the same settings share one run while it goes (it stops
/// when every request waiting on it has been cancelled) and its result afterwards, from a cache bounded to
/// <see cref="DefaultCapacity"/> settings.
/// </summary>
internal sealed class ForkCalibration : IDisposable
{
    /// <summary>The seed calibration probes are drawn from.</summary>
    public const ulong CalibrationSeed = 0xC0FFEE;

    /// <summary>Calibrations kept (distinct model, condition and sampler settings); beyond it the least recently used go.</summary>
    public const int DefaultCapacity = 256;

    private readonly SearchEngine _engine;
    private readonly MemoryCache _results;
    private readonly Dictionary<CalibrationKey, Run> _running = [];
    private readonly Lock _gate = new();

    internal ForkCalibration(SearchEngine engine, int capacity = DefaultCapacity)
    {
        _engine = engine;
        _results = new MemoryCache(new MemoryCacheOptions { SizeLimit = capacity });
    }

    /// <summary>Probe trajectories per grid step. Default 16: fewer leave the per-condition gain estimate too noisy.</summary>
    public int Probes { get; init; } = 16;

    /// <summary>Siblings forked per probe and grid step. Default 4.</summary>
    public int Siblings { get; init; } = 4;

    /// <summary>Grid steps: 0, N/G, 2N/G, … Default 10.</summary>
    public int GridPoints { get; init; } = 10;

    /// <summary>The share of the independent samples' best-of gain (in verifier score) that siblings must keep. Default 0.85.</summary>
    public double RetainedGain { get; init; } = 0.85;

    /// <summary>Calibrations held in the cache now.</summary>
    public int Cached => _results.Count;

    /// <summary>
    /// The NFE one calibration for <paramref name="request"/>'s settings spends: each probe steps to the last grid
    /// step, and at every grid step its siblings finish the remaining steps (under η = 0 each fork is renoised back
    /// <see cref="SearchRequest.ForkRenoiseSteps"/> steps first).
    /// </summary>
    public long PlannedNfe(SearchRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var grid = Grid(request.Steps);
        var context = request.ToPlanContext();
        return ((long)Probes * grid[^1]) + grid.Sum(g => (long)Probes * Siblings * (request.Steps - g + context.RenoisedAt(g)));
    }

    /// <summary>
    /// The NFE <paramref name="request"/> will spend calibrating: <see cref="PlannedNfe"/> when its strategy's plan
    /// calibrates the fork step (<c>fork_at: auto</c>) and its settings are not calibrated yet, otherwise 0. The request's
    /// strategy must have been validated.
    /// </summary>
    public long NfeToCalibrate(SearchRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        return request.Strategy.Plan(request.ToPlanContext()).CalibratesForkStep && !_results.TryGetValue(CalibrationKey.Of(request), out _) ? PlannedNfe(request) : 0;
    }

    /// <summary>The calibration for the request's model, condition, steps, guidance, sampler, prompt and verifiers (computed once).</summary>
    /// <returns>The result, and whether this call started the run that computed it (false when it came from the cache or another request's run).</returns>
    public async Task<(ForkCalibrationResult Result, bool Ran)> GetAsync(SearchRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        var key = CalibrationKey.Of(request);
        Run? run;
        bool started;
        lock (_gate)
        {
            if (_results.TryGetValue(key, out ForkCalibrationResult? cached))
            {
                return (cached!, false);
            }

            started = !_running.TryGetValue(key, out run);
            if (run is null)
            {
                run = new Run();
                _running[key] = run;
                run.Task = MeasureAndKeepAsync(key, request, run);
            }

            run.Waiters++;
        }

        try
        {
            return (await run.Task.WaitAsync(cancellationToken).ConfigureAwait(false), started);
        }
        finally
        {
            Leave(key, run);
        }
    }

    /// <summary>Runs the calibration without the cache.</summary>
    public async Task<ForkCalibrationResult> MeasureAsync(SearchRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        // The probes run on a tree of the request's settings; its own strategy, seed and budget play no part.
        var tree = _engine.CreateTree(request with { Seed = CalibrationSeed, Budget = new SearchBudget() }, leasePrompts: true);
        if (tree.Verifiers.Count == 0)
        {
            throw new InvalidRequestException("verifiers", "fork_at: auto measures when siblings stop differing in verifier score, so it needs at least one verifier.");
        }

        try
        {
            var grid = Grid(request.Steps);
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

    /// <inheritdoc />
    public void Dispose() => _results.Dispose();

    private List<int> Grid(int steps) => [.. Enumerable.Range(0, GridPoints).Select(g => g * steps / GridPoints).Distinct()];

    private async Task<ForkCalibrationResult> MeasureAndKeepAsync(CalibrationKey key, SearchRequest request, Run run)
    {
        await Task.Yield(); // the caller registers as a waiter before the run starts
        try
        {
            var result = await MeasureAsync(request, run.Stop.Token).ConfigureAwait(false);
            lock (_gate)
            {
                _results.Set(key, result, new MemoryCacheEntryOptions { Size = 1 });
            }

            return result;
        }
        finally
        {
            lock (_gate)
            {
                if (_running.TryGetValue(key, out var current) && current == run)
                {
                    _running.Remove(key);
                }
            }
        }
    }

    /// <summary>A request stops waiting; the run stops once no request waits on it.</summary>
    private void Leave(CalibrationKey key, Run run)
    {
        lock (_gate)
        {
            if (--run.Waiters > 0 || run.Task.IsCompleted)
            {
                return;
            }

            if (_running.TryGetValue(key, out var current) && current == run)
            {
                _running.Remove(key);
            }

            run.Stop.Cancel();
        }
    }

    /// <summary>One calibration in progress and the requests waiting on it.</summary>
    private sealed class Run
    {
        public CancellationTokenSource Stop { get; } = new();

        public Task<ForkCalibrationResult> Task { get; set; } = null!;

        public int Waiters { get; set; }
    }

    /// <summary>Every setting that changes a calibration's result (the request's seed, strategy and budget do not).</summary>
    private sealed record CalibrationKey(string Model, string Condition, int Steps, double Guidance, double Eta, Processes.SamplerSettings? Sampler, string Prompt, string Verifiers, string Ensemble, int ForkRenoiseSteps)
    {
        public static CalibrationKey Of(SearchRequest r) => new(
            r.Model,
            r.TextPrompt is null ? r.Condition : $"{r.TextPrompt}\n{r.NegativePrompt}",
            r.Steps,
            r.Guidance,
            r.Eta,
            r.Sampler,
            r.Prompt is null ? string.Empty : $"{string.Join(',', r.Prompt.Tokens)}/{(r.Prompt.Clamped is null ? "*" : string.Join(',', r.Prompt.Clamped))}",
            string.Join('\n', r.Verifiers.Select(v => string.Create(CultureInfo.InvariantCulture, $"{v}={(r.VerifierWeights is { } weights && weights.TryGetValue(v, out var w) ? w : 1):R}"))),
            r.Ensemble.ToString(),
            r.ForkRenoiseSteps);
    }
}
