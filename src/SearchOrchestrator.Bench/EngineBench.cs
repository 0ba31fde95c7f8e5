using System.Diagnostics;
using SearchOrchestrator.Denoising;
using SearchOrchestrator.Scheduling;
using SearchOrchestrator.Search;
using SearchOrchestrator.Strategies;

namespace SearchOrchestrator.Bench;

/// <summary>The workload of <c>bench engine</c>.</summary>
internal sealed record EngineSettings
{
    public required string Model { get; init; }

    /// <summary>Batch sizes (rows) of the raw forward-pass loop.</summary>
    public required IReadOnlyList<int> BatchSizes { get; init; }

    /// <summary>Concurrent searches of the engine runs.</summary>
    public required IReadOnlyList<int> Concurrency { get; init; }

    /// <summary>How long each raw-loop batch size and each engine level is measured.</summary>
    public required TimeSpan Window { get; init; }

    /// <summary>Steps of each search in the engine runs.</summary>
    public required int Steps { get; init; }

    public required double Guidance { get; init; }

    /// <summary>The instance × intra-op thread settings compared side by side (default: <see cref="ThreadingSetting.Grid"/>).</summary>
    public IReadOnlyList<ThreadingSetting> Threading { get; init; } = ThreadingSetting.Grid(Environment.ProcessorCount);

    /// <summary>Checks the settings, naming the option to fix.</summary>
    public void Validate()
    {
        if (BatchSizes.Count == 0 || BatchSizes.Any(b => b < 1 || b > 1024))
        {
            throw new InvalidRequestException("batch-sizes", $"--batch-sizes must list sizes between 1 and 1024, got [{string.Join(", ", BatchSizes)}].");
        }

        if (Concurrency.Count == 0 || Concurrency.Any(c => c < 1 || c > 4096))
        {
            throw new InvalidRequestException("concurrency", $"--concurrency must list search counts between 1 and 4096, got [{string.Join(", ", Concurrency)}].");
        }

        if (Window <= TimeSpan.Zero)
        {
            throw new InvalidRequestException("seconds", $"--seconds must be above 0, got {Window.TotalSeconds}.");
        }

        if (Steps < 1)
        {
            throw new InvalidRequestException("steps", $"--steps must be at least 1, got {Steps}.");
        }
    }
}

/// <summary>The raw forward-pass loop at one batch size.</summary>
internal sealed record RawPoint(int BatchSize, long Passes, double Seconds, long Rows)
{
    /// <summary>This and <paramref name="other"/> together (named by the batch size of the larger share of rows).</summary>
    public RawPoint Plus(RawPoint other) => new(other.Rows > Rows ? other.BatchSize : BatchSize, Passes + other.Passes, Seconds + other.Seconds, Rows + other.Rows);

    public double RowsPerSecond => Rows / Seconds;

    public double MicrosecondsPerPass => Seconds * 1e6 / Passes;
}

/// <summary>The engine at one concurrency, batched or not.</summary>
internal sealed record EnginePoint
{
    public required int Concurrency { get; init; }

    public required bool Batched { get; init; }

    public required int MaxBatchSize { get; init; }

    public required double Seconds { get; init; }

    public required long Passes { get; init; }

    public required long Rows { get; init; }

    public required double ForwardSeconds { get; init; }

    /// <summary>Instances of the denoiser running passes side by side; forward time is summed over them.</summary>
    public int Instances { get; init; } = 1;

    public required int RowsPerStep { get; init; }

    /// <summary>The raw loop at the mean batch size, interpolated from the sweep.</summary>
    public required double RawRowsPerSecondAtMeanBatch { get; init; }

    /// <summary>The raw loop at the mean batch size (rounded), measured right after this level, so both saw the same machine load.</summary>
    public required RawPoint PairedRaw { get; init; }

    /// <summary>Sample-steps through the denoiser per second: rows (one sample at one step in one pass) per second.</summary>
    public double RowsPerSecond => Rows / Seconds;

    /// <summary>This and another slice of the same level, with their paired raw-loop slice, together.</summary>
    public EnginePoint Plus(EnginePoint other, RawPoint paired) => this with
    {
        Seconds = Seconds + other.Seconds,
        Passes = Passes + other.Passes,
        Rows = Rows + other.Rows,
        ForwardSeconds = ForwardSeconds + other.ForwardSeconds,
        PairedRaw = PairedRaw.Plus(paired),
    };

    /// <summary>Search steps per second (NFE/s): a guided step is two rows.</summary>
    public double NfePerSecond => RowsPerSecond / RowsPerStep;

    public double MeanBatchRows => Passes == 0 ? 0 : (double)Rows / Passes;

    /// <summary>Throughput against the raw loop at the same mean batch size, measured right after it.</summary>
    public double RatioToRaw => RowsPerSecond / PairedRaw.RowsPerSecond;

    /// <summary>Throughput against the raw-loop sweep, interpolated at the same mean batch size.</summary>
    public double RatioToSweep => RowsPerSecond / RawRowsPerSecondAtMeanBatch;

    /// <summary>Wall time between forward passes per search step, in microseconds: everything but the forward pass.</summary>
    public double OverheadPerStepUs => (Seconds - ForwardWall) * 1e6 / (Rows / (double)RowsPerStep);

    /// <summary>Wall time outside forward passes per pass, in microseconds.</summary>
    public double OverheadPerPassUs => Passes == 0 ? 0 : (Seconds - ForwardWall) * 1e6 / Passes;

    /// <summary>Share of the window an instance of the denoiser was running a pass (the mean over instances).</summary>
    public double ForwardBusy => ForwardSeconds / Instances / Seconds;

    /// <summary>
    /// Wall time with a pass running, estimated: one search's passes never overlap (each step waits for the last);
    /// under load every instance is running one.
    /// </summary>
    private double ForwardWall => Concurrency == 1 ? ForwardSeconds : ForwardSeconds / Instances;
}

/// <summary>
/// <c>searchorch bench engine</c>: the physical limit — a tight loop of the denoiser's forward pass at each batch size,
/// no queue, no tree, no sampler — against the engine running 1, 8, 32 and 64 concurrent searches, with batching
/// (the serving default, 64 rows) and without it (each pass holds one search's step), measured in a steady-state
/// window while every search slot stays busy.
/// </summary>
internal static class EngineBench
{
    public static async Task<(IReadOnlyList<RawPoint> Raw, IReadOnlyList<EnginePoint> Engine)> RunAsync(BenchContext context, EngineSettings settings, CancellationToken cancellationToken)
    {
        settings.Validate();
        var denoiser = context.Repository.GetDenoiser(settings.Model);
        var rowsPerStep = ClassifierFreeGuidance.NeedsUnconditional(settings.Guidance) ? 2 : 1;
        var threading = await ThreadingBench.RunAsync(context, settings, cancellationToken).ConfigureAwait(false);
        var bar = context.Progress.Start("bench engine", (settings.BatchSizes.Count + (4 * settings.Concurrency.Count)) * settings.Window.TotalSeconds);
        // A shared machine's load drifts over minutes: measure in slices, round-robin over the batch sizes and, for
        // each engine level, alternating with the raw loop at its batch size, so every comparison saw the same load.
        var slices = Math.Max(1, (int)Math.Round(settings.Window.TotalSeconds));
        var slice = settings.Window / slices;
        var sweep = settings.BatchSizes.ToDictionary(b => b, b => new RawPoint(b, 0, 0, 0));
        for (var round = 0; round < slices; round++)
        {
            foreach (var size in settings.BatchSizes)
            {
                bar.Describe($"raw forward loop, batch {size} (slice {round + 1}/{slices})");
                sweep[size] = sweep[size].Plus(await RawLoopAsync(denoiser, size, slice, cancellationToken).ConfigureAwait(false));
                bar.Advance(slice.TotalSeconds);
            }
        }

        var raw = settings.BatchSizes.Select(b => sweep[b]).ToList();
        var engine = new List<EnginePoint>();
        foreach (var concurrency in settings.Concurrency)
        {
            foreach (var batched in new[] { true, false })
            {
                var maxBatch = batched ? new BatchingOptions().MaxBatchSize : rowsPerStep;
                EnginePoint? point = null;
                for (var round = 0; round < slices; round++)
                {
                    bar.Describe($"engine, {concurrency} concurrent searches, {(batched ? "batched" : "batching off")} (slice {round + 1}/{slices})");
                    var part = await EngineLevelAsync(context.Models, settings, slice, concurrency, maxBatch, batched, rowsPerStep, raw, cancellationToken).ConfigureAwait(false);
                    bar.Advance(slice.TotalSeconds);
                    bar.Describe($"raw forward loop, batch {Math.Max(1, (int)Math.Round(part.MeanBatchRows))} (paired with {concurrency} searches)");
                    var paired = await RawLoopAsync(denoiser, Math.Max(1, (int)Math.Round(part.MeanBatchRows)), slice, cancellationToken).ConfigureAwait(false);
                    bar.Advance(slice.TotalSeconds);
                    point = point is null ? part with { PairedRaw = paired } : point.Plus(part, paired);
                }

                engine.Add(point! with { RawRowsPerSecondAtMeanBatch = RawAt(raw, point.MeanBatchRows) });
            }
        }

        bar.Finish();
        Render(context.Report, settings, denoiser.Description.Name, raw, engine);
        context.Report.Results("engine", new { settings = new { settings.Model, settings.BatchSizes, settings.Concurrency, windowSeconds = settings.Window.TotalSeconds, settings.Steps, settings.Guidance }, raw, engine, threading });
        return (raw, engine);
    }

    /// <summary>
    /// Back-to-back forward passes of one batch size: random states, times and conditions; a denoiser with several
    /// instances runs one such loop on each at once, and the rows of all of them count.
    /// </summary>
    internal static async Task<RawPoint> RawLoopAsync(IDenoiser denoiser, int size, TimeSpan window, CancellationToken cancellationToken)
    {
        if (denoiser is IMultiInstanceDenoiser { Instances.Count: > 1 } multi)
        {
            var loops = await Task.WhenAll(multi.Instances.Select(i => Task.Run(() => RawLoopAsync(i, size, window, cancellationToken), cancellationToken))).ConfigureAwait(false);
            return new RawPoint(size, loops.Sum(l => l.Passes), loops.Max(l => l.Seconds), loops.Sum(l => l.Rows));
        }

        var elements = denoiser.Description.SampleShape.ElementCount;
        var random = new Random(size);
        var samples = new float[size * elements];
        var output = new float[size * elements];
        var times = new float[size];
        var conditions = new long[size];
        for (var i = 0; i < samples.Length; i++)
        {
            samples[i] = (float)((random.NextDouble() * 2) - 1);
        }

        var ids = denoiser.Description.Conditions.Labels.Select(l => denoiser.Description.Conditions.Resolve(l, denoiser.Description.Name)).ToArray();
        for (var i = 0; i < size; i++)
        {
            times[i] = random.Next(0, 1000);
            conditions[i] = ids[random.Next(ids.Length)];
        }

        var batch = new DenoiserBatch(size, samples, times, conditions);
        for (var i = 0; i < 3; i++)
        {
            await denoiser.PredictAsync(batch, output, cancellationToken).ConfigureAwait(false);
        }

        long passes = 0;
        var started = Stopwatch.GetTimestamp();
        do
        {
            await denoiser.PredictAsync(batch, output, cancellationToken).ConfigureAwait(false);
            passes++;
        }
        while (Stopwatch.GetElapsedTime(started) < window);
        return new RawPoint(size, passes, Stopwatch.GetElapsedTime(started).TotalSeconds, size * passes);
    }

    /// <summary>
    /// <paramref name="concurrency"/> workers each run one single-trajectory search after another; after a warm-up
    /// the forward passes of a fixed window are counted, then the workers stop.
    /// </summary>
    internal static async Task<EnginePoint> EngineLevelAsync(TimedModels models, EngineSettings settings, TimeSpan window, int concurrency, int maxBatch, bool batched, int rowsPerStep, List<RawPoint> raw, CancellationToken cancellationToken)
    {
        await using var engine = new SearchEngine(models, new BatchingOptions { MaxBatchSize = maxBatch });
        var labels = models.GetDenoiser(settings.Model).Description.Conditions.Labels;
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var workers = Enumerable.Range(0, concurrency).Select(w => Task.Run(async () =>
        {
            for (ulong i = 0; !stop.IsCancellationRequested; i++)
            {
                var request = new SearchRequest
                {
                    Model = settings.Model,
                    Condition = labels[(w + (int)i) % labels.Count],
                    Steps = settings.Steps,
                    Guidance = settings.Guidance,
                    Eta = 0.5,
                    Seed = ((ulong)w << 32) | i,
                    Strategy = new BestOfNStrategy(1),
                };
                try
                {
                    await engine.RunAsync(request, stop.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (stop.IsCancellationRequested)
                {
                    return;
                }
            }
        }, CancellationToken.None)).ToList();

        // Warm up until every worker has its search in flight and the pump is in its steady state.
        await Task.Delay(TimeSpan.FromSeconds(Math.Min(0.5, window.TotalSeconds / 2)), cancellationToken).ConfigureAwait(false);
        var before = models.Denoising.Read();
        var started = Stopwatch.GetTimestamp();
        await Task.Delay(window, cancellationToken).ConfigureAwait(false);
        var counted = models.Denoising.Read() - before;
        // A window with no pass measures nothing (a tiny window on a starved machine): it lasts until one has run.
        while (counted.Passes == 0)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(10), cancellationToken).ConfigureAwait(false);
            counted = models.Denoising.Read() - before;
        }

        var seconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
        await stop.CancelAsync().ConfigureAwait(false);
        await Task.WhenAll(workers).ConfigureAwait(false);
        return new EnginePoint
        {
            Concurrency = concurrency,
            Batched = batched,
            MaxBatchSize = maxBatch,
            Seconds = seconds,
            Passes = counted.Passes,
            Rows = counted.Rows,
            ForwardSeconds = counted.Time.TotalSeconds,
            Instances = models.GetDenoiser(settings.Model) is IMultiInstanceDenoiser { Instances.Count: > 1 } multi ? multi.Instances.Count : 1,
            RowsPerStep = rowsPerStep,
            RawRowsPerSecondAtMeanBatch = RawAt(raw, counted.MeanRows),
            PairedRaw = new RawPoint(0, 0, 0, 0),
        };
    }

    /// <summary>The raw loop's rows per second at <paramref name="batch"/> rows, interpolated linearly between measured sizes.</summary>
    internal static double RawAt(IReadOnlyList<RawPoint> raw, double batch)
    {
        var sorted = raw.OrderBy(p => p.BatchSize).ToList();
        if (batch <= sorted[0].BatchSize)
        {
            return sorted[0].RowsPerSecond;
        }

        for (var i = 1; i < sorted.Count; i++)
        {
            if (batch <= sorted[i].BatchSize)
            {
                var (a, b) = (sorted[i - 1], sorted[i]);
                var t = (batch - a.BatchSize) / (b.BatchSize - a.BatchSize);
                return a.RowsPerSecond + (t * (b.RowsPerSecond - a.RowsPerSecond));
            }
        }

        return sorted[^1].RowsPerSecond;
    }

    private static void Render(BenchReport report, EngineSettings settings, string model, List<RawPoint> raw, List<EnginePoint> engine)
    {
        report.Heading("Engine: throughput against the raw forward-pass limit");
        report.Paragraph(FormattableString.Invariant(
            $"A *row* is one sample at one step in one forward pass (a sample-step as the denoiser sees it); a guided step (guidance {settings.Guidance}) is {(ClassifierFreeGuidance.NeedsUnconditional(settings.Guidance) ? "two rows" : "one row")}. The raw loop calls the `{model}` denoiser's forward pass back to back on one fixed batch (ONNX Runtime with inputs bound to memory; no queue, no tree, no sampler), {settings.Window.TotalSeconds:0.#} s per batch size in 1-second slices taken round-robin over the sizes, so a change in the machine's load falls on every size alike."));
        var rawTable = new MarkdownTable("batch rows", "passes", "µs / pass", "rows / s");
        foreach (var p in raw)
        {
            rawTable.Add(I($"{p.BatchSize}"), I($"{p.Passes}"), I($"{p.MicrosecondsPerPass:0}"), I($"{p.RowsPerSecond:0}"));
        }

        report.Table(rawTable);
        report.Paragraph(FormattableString.Invariant(
            $"The engine runs C concurrent searches, each a {settings.Steps}-step single trajectory (best_of_n n=1, η 0.5), one after another; after a warm-up, the forward passes of {settings.Window.TotalSeconds:0.#} s are counted, in 1-second slices each followed by a slice of the raw loop at the level's mean batch size. *Batched* is the serving default (`Batching:MaxBatchSize` 64 rows, `MaxQueueDelay` 1 ms); *batching off* caps a pass at one search's step. *vs raw* divides by the raw loop at the same (rounded) mean batch size, measured in slices alternating with the level's, so both saw the same load on a shared machine (*vs sweep* uses the sweep above, interpolated); *non-forward* is window time outside forward passes, per search step."));
        var table = new MarkdownTable("concurrent searches", "batching", "rows / s", "NFE / s", "mean batch rows", "raw rows / s at that batch", "vs raw", "vs sweep", "forward busy", "non-forward µs / step", "batching gain");
        foreach (var p in engine)
        {
            var off = engine.First(e => e.Concurrency == p.Concurrency && !e.Batched);
            table.Add(
                I($"{p.Concurrency}"), p.Batched ? "on" : "off", I($"{p.RowsPerSecond:0}"), I($"{p.NfePerSecond:0}"), I($"{p.MeanBatchRows:0.0}"),
                I($"{p.PairedRaw.RowsPerSecond:0}"), I($"{p.RatioToRaw:0.00}"), I($"{p.RatioToSweep:0.00}"), I($"{p.ForwardBusy:P0}"), I($"{p.OverheadPerStepUs:0}"),
                p.Batched ? I($"{p.RowsPerSecond / off.RowsPerSecond:0.0}×") : "—");
        }

        report.Table(table);
        var at32 = engine.FirstOrDefault(e => e.Concurrency == 32 && e.Batched);
        var off32 = engine.FirstOrDefault(e => e.Concurrency == 32 && !e.Batched);
        if (at32 is not null && off32 is not null)
        {
            report.Paragraph(FormattableString.Invariant(
                $"**Targets at 32 concurrent searches:** throughput {at32.RatioToRaw:0.00} of the raw loop at the same mean batch ({at32.MeanBatchRows:0.0} rows; target ≥ 0.9: {(at32.RatioToRaw >= 0.9 ? "met" : "not met")}); batching gain {at32.RowsPerSecond / off32.RowsPerSecond:0.0}× (target ≥ 3×: {(at32.RowsPerSecond / off32.RowsPerSecond >= 3 ? "met" : "not met")}). ")
                + FormattableString.Invariant(
                $"No scheduler can gain more from batching than the forward pass itself does: on this machine the raw loop runs {RawAt(raw, at32.MeanBatchRows):0} rows/s at {at32.MeanBatchRows:0} rows against {RawAt(raw, off32.MeanBatchRows):0} rows/s at {off32.MeanBatchRows:0} rows, a ceiling of {RawAt(raw, at32.MeanBatchRows) / RawAt(raw, off32.MeanBatchRows):0.0}× for the batching gain."));
        }

        var on = engine.Where(e => e.Batched).OrderBy(e => e.Concurrency).ToList();
        var offs = engine.Where(e => !e.Batched).OrderBy(e => e.Concurrency).ToList();
        double[] xs = [.. on.Select(e => (double)e.Concurrency)];
        report.Plot("engine-throughput.png", "engine throughput against concurrency and the raw-loop limit", BenchPlots.Lines(
            "engine throughput against the raw forward-pass limit",
            "concurrent searches",
            "rows / s",
            [
                new PlotSeries("engine, batched", xs, [.. on.Select(e => e.RowsPerSecond)]),
                new PlotSeries("engine, batching off", xs, [.. offs.Select(e => e.RowsPerSecond)]),
                new PlotSeries("raw loop at the engine's mean batch", xs, [.. on.Select(e => e.PairedRaw.RowsPerSecond)], Dashed: true),
                new PlotSeries("raw loop, best batch", [xs[0], xs[^1]], [raw.Max(r => r.RowsPerSecond), raw.Max(r => r.RowsPerSecond)], Dashed: true, Markers: false),
            ],
            yMin: 0,
            logX: true));
        report.Plot("engine-batch.png", "raw loop throughput against batch size, with the engine's levels at their mean batch", BenchPlots.Lines(
            "forward-pass throughput against batch size",
            "rows per pass",
            "rows / s",
            [
                new PlotSeries("raw forward loop", [.. raw.Select(r => (double)r.BatchSize)], [.. raw.Select(r => r.RowsPerSecond)]),
                new PlotSeries("engine, batched (1, 8, 32, 64 searches)", [.. on.Select(e => e.MeanBatchRows)], [.. on.Select(e => e.RowsPerSecond)], Line: false),
                new PlotSeries("engine, batching off", [.. offs.Select(e => e.MeanBatchRows)], [.. offs.Select(e => e.RowsPerSecond)], Line: false),
            ],
            yMin: 0,
            logX: true));
    }

    private static string I(FormattableString value) => FormattableString.Invariant(value);
}
