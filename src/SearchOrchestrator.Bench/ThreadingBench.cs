using SearchOrchestrator.Denoising;
using SearchOrchestrator.Onnx.Repository;
using SearchOrchestrator.Onnx.Runtime;
using SearchOrchestrator.Scheduling;

namespace SearchOrchestrator.Bench;

/// <summary>
/// One way to spend the cores on a denoiser: <see cref="Instances"/> sessions, each with <see cref="Threads"/> intra-op
/// threads, and a lone-pass session with <see cref="LonePassThreads"/> for a pass that runs alone (1: none).
/// </summary>
internal sealed record ThreadingSetting(int Instances, int Threads, int LonePassThreads = 1)
{
    /// <summary>
    /// The settings worth comparing on <paramref name="cores"/> cores: one thread, all cores in one session, one instance
    /// per core, and one instance per core with a lone pass on every core.
    /// </summary>
    public static IReadOnlyList<ThreadingSetting> Grid(int cores)
    {
        cores = Math.Max(1, cores);
        return [.. new[] { new ThreadingSetting(1, 1), new ThreadingSetting(1, cores), new ThreadingSetting(cores, 1), new ThreadingSetting(cores, 1, cores) }.Distinct()];
    }

    public override string ToString() => FormattableString.Invariant($"{Instances} × {Threads}{(LonePassThreads > Threads ? $" + lone {LonePassThreads}" : string.Empty)}");
}

/// <summary>What one threading setting gives: the raw loop's limit, a lone search's step, and throughput under load.</summary>
internal sealed record ThreadingPoint
{
    public required ThreadingSetting Setting { get; init; }

    /// <summary>True for what <c>Models:Instances</c> and <c>Models:IntraOpThreads</c> default to on this machine.</summary>
    public required bool IsDefault { get; init; }

    /// <summary>The raw loop at one guided step's rows, on every instance at once.</summary>
    public required RawPoint RawSmall { get; init; }

    /// <summary>The raw loop at a full batch, on every instance at once.</summary>
    public required RawPoint RawLarge { get; init; }

    /// <summary>One search alone.</summary>
    public required EnginePoint Alone { get; init; }

    public required EnginePoint At32 { get; init; }

    public required EnginePoint At64 { get; init; }

    /// <summary>Wall time per step of a lone search, in microseconds.</summary>
    public double AloneStepUs => Alone.Seconds * 1e6 / (Alone.Rows / (double)Alone.RowsPerStep);

    public double RawBest => Math.Max(RawSmall.RowsPerSecond, RawLarge.RowsPerSecond);

    public ThreadingPoint Plus(ThreadingPoint o) => this with
    {
        RawSmall = RawSmall.Plus(o.RawSmall),
        RawLarge = RawLarge.Plus(o.RawLarge),
        Alone = Alone.Plus(o.Alone, o.Alone.PairedRaw),
        At32 = At32.Plus(o.At32, o.At32.PairedRaw),
        At64 = At64.Plus(o.At64, o.At64.PairedRaw),
    };
}

/// <summary>
/// The threading part of <c>bench engine</c>: every instance × thread setting loaded side by side from the same
/// repository folder and measured in alternating 1-second slices (so a shared machine's load falls on each alike):
/// the raw forward loop on all instances at once (2 and 64 rows; the best is the machine's limit), a lone search's
/// wall time per step, and throughput at 32 and 64 concurrent searches.
/// </summary>
internal static class ThreadingBench
{
    public static async Task<IReadOnlyList<ThreadingPoint>> RunAsync(BenchContext context, EngineSettings settings, CancellationToken cancellationToken)
    {
        var rowsPerStep = ClassifierFreeGuidance.NeedsUnconditional(settings.Guidance) ? 2 : 1;
        var fullBatch = new BatchingOptions().MaxBatchSize;
        var defaults = new ModelRepositoryOptions().Threading(Environment.ProcessorCount, context.Repository.ExecutionProvider != Onnx.Runtime.ExecutionProviderNames.Cpu);
        var repositories = settings.Threading.Select(t => ModelRepository.Load(new ModelRepositoryOptions
        {
            Path = context.Repository.RootPath,
            ExecutionProvider = context.Repository.ExecutionProvider,
            Instances = t.Instances,
            IntraOpThreads = t.Threads,
            LonePassThreads = t.LonePassThreads,
        })).ToList();
        try
        {
            var models = repositories.Select(r => new TimedModels(r)).ToList();
            var slices = Math.Max(1, (int)Math.Round(settings.Window.TotalSeconds));
            var slice = settings.Window / slices;
            var bar = context.Progress.Start("bench engine: threading", slices * settings.Threading.Count * 5 * slice.TotalSeconds);
            var points = new ThreadingPoint?[settings.Threading.Count];
            for (var round = 0; round < slices; round++)
            {
                for (var i = 0; i < settings.Threading.Count; i++)
                {
                    var setting = settings.Threading[i];
                    bar.Describe($"threading {setting} (slice {round + 1}/{slices})");
                    var denoiser = repositories[i].GetDenoiser(settings.Model);
                    var small = await EngineBench.RawLoopAsync(denoiser, rowsPerStep, slice, cancellationToken).ConfigureAwait(false);
                    var large = await EngineBench.RawLoopAsync(denoiser, fullBatch, slice, cancellationToken).ConfigureAwait(false);
                    var alone = await EngineBench.EngineLevelAsync(models[i], settings, slice, 1, fullBatch, true, rowsPerStep, [small], cancellationToken).ConfigureAwait(false);
                    var at32 = await EngineBench.EngineLevelAsync(models[i], settings, slice, 32, fullBatch, true, rowsPerStep, [large], cancellationToken).ConfigureAwait(false);
                    var at64 = await EngineBench.EngineLevelAsync(models[i], settings, slice, 64, fullBatch, true, rowsPerStep, [large], cancellationToken).ConfigureAwait(false);
                    bar.Advance(5 * slice.TotalSeconds);
                    var point = new ThreadingPoint
                    {
                        Setting = setting,
                        IsDefault = setting == new ThreadingSetting(defaults.Instances, defaults.IntraOpThreads, Math.Max(1, defaults.LonePassThreads)),
                        RawSmall = small,
                        RawLarge = large,
                        Alone = alone with { PairedRaw = small },
                        At32 = at32 with { PairedRaw = large },
                        At64 = at64 with { PairedRaw = large },
                    };
                    points[i] = points[i] is { } sum ? sum.Plus(point) : point;
                }
            }

            bar.Finish();
            var result = points.Select(p => p!).ToList();
            Render(context.Report, settings, rowsPerStep, fullBatch, result);
            return result;
        }
        finally
        {
            repositories.ForEach(r => r.Dispose());
        }
    }

    private static void Render(BenchReport report, EngineSettings settings, int rowsPerStep, int fullBatch, List<ThreadingPoint> points)
    {
        var best = points.MaxBy(p => p.RawBest)!;
        var baseline = points[0];
        report.Heading("Engine: threads and instances");
        report.Paragraph(I($"Each setting is *instances × intra-op threads per instance* (`Models:Instances` × `Models:IntraOpThreads`), *+ lone n* when a pass that runs alone (no other instance busy, every stepping search in it) runs on a lone-pass session with n threads (`Models:LonePassThreads`), loaded side by side and measured in {settings.Window.TotalSeconds:0.#} s of 1-second slices taken in turn, so the machine's load falls on every setting alike. *Raw* runs the forward pass back to back on every instance at once ({rowsPerStep} rows: one search's step; {fullBatch} rows: a full batch); *alone* is one {settings.Steps}-step search at a time (wall time per step, and the part of it outside forward passes); *32* and *64* are that many concurrent searches, batched (serving defaults). Ratios are against {baseline.Setting}, measured in the same slices; *default* marks what this machine gets with both settings at 0."));
        var table = new MarkdownTable("instances × threads", "raw rows / s, 2 rows", I($"raw rows / s, {fullBatch} rows"), "alone µs / step", "alone non-forward µs / step", "rows / s at 32", "rows / s at 64", I($"at 32 vs {baseline.Setting}"), I($"at 64 vs {baseline.Setting}"), I($"alone step vs {baseline.Setting}"));
        foreach (var p in points)
        {
            table.Add(
                p.Setting + (p.IsDefault ? " (default)" : string.Empty), I($"{p.RawSmall.RowsPerSecond:0}"), I($"{p.RawLarge.RowsPerSecond:0}"), I($"{p.AloneStepUs:0}"), I($"{p.Alone.OverheadPerStepUs:0}"),
                I($"{p.At32.RowsPerSecond:0}"), I($"{p.At64.RowsPerSecond:0}"), I($"{p.At32.RowsPerSecond / baseline.At32.RowsPerSecond:0.00}×"), I($"{p.At64.RowsPerSecond / baseline.At64.RowsPerSecond:0.00}×"), I($"{p.AloneStepUs / baseline.AloneStepUs:0.00}×"));
        }

        report.Table(table);
        report.Paragraph(I($"**Limit:** the raw loop's best is {best.RawBest:0} rows/s, with {best.Setting} at {(best.RawLarge.RowsPerSecond >= best.RawSmall.RowsPerSecond ? fullBatch : rowsPerStep)} rows; with it the raw loop gains {best.RawLarge.RowsPerSecond / best.RawSmall.RowsPerSecond:0.00}× from batching ({rowsPerStep} → {fullBatch} rows)."));
    }

    private static string I(FormattableString value) => FormattableString.Invariant(value);
}
