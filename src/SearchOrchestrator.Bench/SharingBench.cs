using System.Globalization;
using SearchOrchestrator.Search;
using SearchOrchestrator.Strategies;

namespace SearchOrchestrator.Bench;

/// <summary>The grid and task of <c>bench sharing</c>.</summary>
internal sealed record SharingSettings
{
    public required string Model { get; init; }

    public required string Verifier { get; init; }

    public required IReadOnlyList<int> Ks { get; init; }

    /// <summary>Fork points as fractions s/N.</summary>
    public required IReadOnlyList<double> Fractions { get; init; }

    public required int Steps { get; init; }

    public required int Seeds { get; init; }

    /// <summary>Conditions to run; empty means every label of the model (a pipeline's fixed bench prompts).</summary>
    public required IReadOnlyList<string> Conditions { get; init; }

    public required double Guidance { get; init; }

    public required double Eta { get; init; }

    /// <summary>Checks the settings, naming the option to fix.</summary>
    public void Validate()
    {
        if (Ks.Count == 0 || Ks.Any(k => k < 2))
        {
            throw new InvalidRequestException("ks", $"--ks must list branch counts of at least 2, got [{string.Join(", ", Ks)}].");
        }

        if (Fractions.Count == 0 || Fractions.Any(f => !(f >= 0 && f < 1)))
        {
            throw new InvalidRequestException("fractions", $"--fractions must list fork points s/N in [0, 1), got [{string.Join(", ", Fractions)}].");
        }

        if (Steps < 2)
        {
            throw new InvalidRequestException("steps", $"--steps must be at least 2, got {Steps}.");
        }

        if (Seeds < 1)
        {
            throw new InvalidRequestException("seeds", $"--seeds must be at least 1, got {Seeds}.");
        }

        if (!(Eta > 0))
        {
            throw new InvalidRequestException("eta", $"--eta must be above 0 so that forked siblings differ (at 0 every fork also renoises, which the formula does not count), got {Eta}.");
        }
    }
}

/// <summary>One (k, s) cell of <c>bench sharing</c>, aggregated over its searches.</summary>
internal sealed record SharingCell
{
    public required int K { get; init; }

    public required int ForkStep { get; init; }

    public required double Fraction { get; init; }

    /// <summary>m = k − (k−1)·s/N.</summary>
    public required double Formula { get; init; }

    /// <summary>Mean NFE of the shared-prefix searches over N: the NFE ratio against one trajectory.</summary>
    public required double NfeRatio { get; init; }

    /// <summary>True when every shared-prefix search spent exactly k·N − (k−1)·s NFE.</summary>
    public required bool NfeExact { get; init; }

    /// <summary>Mean text encoder calls of the shared-prefix searches (a pipeline's; 0 for a class-conditioned model).</summary>
    public double EncoderCalls { get; init; }

    /// <summary>Mean decoder calls of the shared-prefix searches (a pipeline's; 0 for a class-conditioned model).</summary>
    public double DecoderCalls { get; init; }

    /// <summary>Mean wall time of the shared-prefix searches over that of one trajectory.</summary>
    public required double WallRatio { get; init; }

    /// <summary>
    /// The wall ratio the measured per-step costs predict: s steps at one trajectory's wall time per step and N − s at
    /// independent best-of-k's, over N of one trajectory's: (s·T1 + (N − s)·Tk) / (N·T1).
    /// </summary>
    public required double PredictedWallRatio { get; init; }

    /// <summary>Mean wall time of independent best-of-k over that of one trajectory.</summary>
    public required double IndependentWallRatio { get; init; }

    public required double SharedAccuracy { get; init; }

    public required double IndependentAccuracy { get; init; }

    public required ComponentMeans Shared { get; init; }

    public required ComponentMeans Independent { get; init; }
}

/// <summary>Means per search, in milliseconds, of where wall time went.</summary>
internal sealed record ComponentMeans(double WallMs, double ForwardMs, double SamplerUpdateMs, double VerifierMs, double OtherMs, double QueueMs, double Passes, double MeanRows)
{
    public static ComponentMeans Of(IReadOnlyList<SearchSample> samples) => new(
        samples.Average(s => s.WallMs),
        samples.Average(s => s.ForwardMs),
        samples.Average(s => s.SamplerUpdateMs),
        samples.Average(s => s.VerifierMs),
        samples.Average(s => s.OtherMs),
        samples.Average(s => s.QueueMs),
        samples.Average(s => (double)s.ForwardPasses),
        samples.Sum(s => (double)s.ForwardRows) / Math.Max(1, samples.Sum(s => s.ForwardPasses)));

    /// <summary>Forward-pass time per pass, in microseconds.</summary>
    public double ForwardPerPassUs => Passes == 0 ? 0 : ForwardMs * 1000 / Passes;

    /// <summary>Everything but the forward pass, per pass (per step of the search), in microseconds.</summary>
    public double OverheadPerPassUs => Passes == 0 ? 0 : (WallMs - ForwardMs) * 1000 / Passes;
}

/// <summary>
/// <c>searchorch bench sharing</c>: for each k and fork point s, <c>shared_prefix</c> against independent best-of-k
/// on the same conditions and seeds, interleaved in one process, each search run alone so its wall time is its own.
/// Reports the formula m = k − (k−1)·s/N, the measured NFE ratio (which must equal it), the wall-time ratio against
/// one trajectory, the accuracy of both by the programmatic counter (the compositional judge for a pipeline's prompts), and where the wall time went.
/// </summary>
internal static class SharingBench
{
    public static async Task<IReadOnlyList<SharingCell>> RunAsync(BenchContext context, SharingSettings settings, CancellationToken cancellationToken)
    {
        settings.Validate();
        var pipeline = context.Models.GetStages(settings.Model) is not null;
        var all = context.Conditions(settings.Model);
        IReadOnlyList<string> conditions = settings.Conditions.Count > 0 ? settings.Conditions : context.Quick ? [all[0], all[4], all[8]] : all;
        var n = settings.Steps;
        var forkSteps = settings.Fractions.Select(f => (int)Math.Round(f * n)).Distinct().ToList();
        await using var engine = new SearchEngine(context.Models);
        var template = new SearchRequest
        {
            Model = settings.Model,
            Condition = string.Empty,
            Steps = n,
            Guidance = settings.Guidance,
            Eta = settings.Eta,
            Strategy = new BestOfNStrategy(1),
            Verifiers = [settings.Verifier],
        };
        foreach (var condition in conditions)
        {
            engine.Validate(BenchContext.For(template, condition, pipeline));
        }

        // One search before measuring, so first-call costs (thread start-up, JIT) land in no cell.
        await engine.RunAsync(BenchContext.For(template, conditions[0], pipeline) with { Seed = ulong.MaxValue }, cancellationToken).ConfigureAwait(false);

        var jobs = conditions.SelectMany(c => Enumerable.Range(1, settings.Seeds).Select(seed => (Condition: c, Seed: (ulong)seed))).ToList();
        var single = new List<SearchSample>();
        var independent = settings.Ks.ToDictionary(k => k, _ => new List<SearchSample>());
        var shared = new Dictionary<(int K, int S), List<SearchSample>>();
        var bar = context.Progress.Start("bench sharing", jobs.Count * (1 + (settings.Ks.Count * (1 + forkSteps.Count))));
        for (var j = 0; j < jobs.Count; j++)
        {
            var (condition, seed) = jobs[j];
            var request = BenchContext.For(template, condition, pipeline) with { Seed = seed };
            async Task<SearchSample> Run(ISearchStrategy strategy, string cell)
            {
                bar.Describe($"condition {condition} seed {seed}, {cell} ({j + 1}/{jobs.Count})");
                var sample = await context.MeasureAsync(engine, request with { Strategy = strategy }, cancellationToken).ConfigureAwait(false);
                bar.Advance();
                return sample;
            }

            single.Add(await Run(new BestOfNStrategy(1), "one trajectory").ConfigureAwait(false));
            foreach (var k in settings.Ks)
            {
                // Alternate which runs first, so slow drift of the machine does not favour either side.
                var independentFirst = (j + k) % 2 == 0;
                if (independentFirst)
                {
                    independent[k].Add(await Run(new BestOfNStrategy(k), $"best_of_n k={k}").ConfigureAwait(false));
                }

                foreach (var s in forkSteps)
                {
                    var sample = await Run(new SharedPrefixStrategy(k, s), $"shared_prefix k={k} s={s}").ConfigureAwait(false);
                    (shared.TryGetValue((k, s), out var list) ? list : shared[(k, s)] = []).Add(sample);
                }

                if (!independentFirst)
                {
                    independent[k].Add(await Run(new BestOfNStrategy(k), $"best_of_n k={k}").ConfigureAwait(false));
                }
            }
        }

        bar.Finish();
        var singleWall = single.Average(s => s.WallMs);
        var perStepOne = singleWall / n;  // per search step, not per pass: a pipeline's step may take several passes, some at once
        var cells = new List<SharingCell>();
        foreach (var k in settings.Ks)
        {
            foreach (var s in forkSteps)
            {
                var samples = shared[(k, s)];
                cells.Add(new SharingCell
                {
                    K = k,
                    ForkStep = s,
                    Fraction = (double)s / n,
                    Formula = k - ((k - 1) * (double)s / n),
                    NfeRatio = samples.Average(x => (double)x.Nfe) / n,
                    NfeExact = samples.All(x => x.Nfe == ((long)k * n) - ((long)(k - 1) * s)),
                    EncoderCalls = samples.Average(x => (double)x.EncoderCalls),
                    DecoderCalls = samples.Average(x => (double)x.DecoderCalls),
                    WallRatio = samples.Average(x => x.WallMs) / singleWall,
                    IndependentWallRatio = independent[k].Average(x => x.WallMs) / singleWall,
                    PredictedWallRatio = ((s * perStepOne) + ((n - s) * (independent[k].Average(x => x.WallMs) / n))) / (n * perStepOne),
                    SharedAccuracy = samples.Count(x => x.Correct) / (double)samples.Count,
                    IndependentAccuracy = independent[k].Count(x => x.Correct) / (double)independent[k].Count,
                    Shared = ComponentMeans.Of(samples),
                    Independent = ComponentMeans.Of(independent[k]),
                });
            }
        }

        Render(context.Report, settings, conditions, pipeline, single, cells);
        context.Report.Results("sharing", new
        {
            settings,
            conditions,
            single = new { components = ComponentMeans.Of(single), accuracy = single.Count(x => x.Correct) / (double)single.Count },
            cells,
            searches = new { single, independent = independent.ToDictionary(p => p.Key.ToString(CultureInfo.InvariantCulture), p => p.Value), shared = shared.ToDictionary(p => $"k={p.Key.K},s={p.Key.S}", p => p.Value) },
        });
        return cells;
    }

    private static void Render(BenchReport report, SharingSettings settings, IReadOnlyList<string> conditions, bool pipeline, List<SearchSample> single, List<SharingCell> cells)
    {
        var n = settings.Steps;
        var one = ComponentMeans.Of(single);
        report.Heading("Sharing: shared_prefix against independent best-of-k");
        report.Paragraph(FormattableString.Invariant(
            $"{settings.Model}, N = {n} DDIM steps, η = {settings.Eta}, guidance {settings.Guidance}; {conditions.Count} conditions × {settings.Seeds} seeds per cell, the same seeds for both sides, run in one process and interleaved; every search runs alone, so its wall time is its own. Searches score with `{settings.Verifier}`; accuracy is {(pipeline ? "the compositional judge's" : "the programmatic counter's")} verdict on the returned best candidate. One trajectory alone: {one.WallMs:0.0} ms, accuracy {single.Count(x => x.Correct) / (double)single.Count:P1}."));
        var table = new MarkdownTable("k", "s", "s/N", "formula m", "NFE / N", "= formula", "encoder calls", "decoder calls", "wall / one trajectory", "wall predicted from step costs", "independent wall / one", "accuracy shared", "accuracy independent");
        foreach (var c in cells)
        {
            table.Add(
                I($"{c.K}"), I($"{c.ForkStep}"), I($"{c.Fraction:0.00}"), I($"{c.Formula:0.000}"), I($"{c.NfeRatio:0.000}"), c.NfeExact ? "exact" : "NO", I($"{c.EncoderCalls:0.##}"), I($"{c.DecoderCalls:0.##}"),
                I($"{c.WallRatio:0.00}"), I($"{c.PredictedWallRatio:0.00}"), I($"{c.IndependentWallRatio:0.00}"), I($"{c.SharedAccuracy:P1}"), I($"{c.IndependentAccuracy:P1}"));
        }

        report.Table(table);
        report.Plot("sharing.png", "NFE ratio and wall-time ratio against s/N per k, with the formula", BenchPlots.Lines(
            $"shared_prefix: cost against one trajectory (N = {n})",
            "fork point s/N",
            "× one trajectory",
            [.. settings.Ks.SelectMany((k, i) =>
            {
                var row = cells.Where(c => c.K == k).OrderBy(c => c.Fraction).ToList();
                return new[]
                {
                    new PlotSeries($"k={k} formula k−(k−1)·s/N", [0, 1], [k, 1], Markers: false, ColorIndex: i),
                    new PlotSeries($"k={k} measured NFE / N", [.. row.Select(c => c.Fraction)], [.. row.Select(c => c.NfeRatio)], Line: false, ColorIndex: i),
                    new PlotSeries($"k={k} wall / one trajectory", [.. row.Select(c => c.Fraction)], [.. row.Select(c => c.WallRatio)], Dashed: true, ColorIndex: i),
                };
            })],
            yMin: 0));

        report.Paragraph("Where the wall time of one search goes (means per search, ms). *forward* is inside the denoiser's ONNX Runtime passes; *update* is the rest of each batch (stacking inputs, splitting outputs, each node's DDIM update with its own noise); *verifier* is inside verifier passes; *other* is wall time outside all of these (waiting up to `Batching:MaxQueueDelay` for a batch to fill, hand-offs between the strategy and the pump, tree bookkeeping). *queue* is time items waited for their pass, summed over items, so it overlaps the rest.");
        var components = new MarkdownTable("search", "wall", "forward", "update", "verifier", "other", "queue (Σ items)", "passes", "rows / pass", "forward µs / pass", "non-forward µs / pass");
        void Row(string name, ComponentMeans m) => components.Add(
            name, I($"{m.WallMs:0.0}"), I($"{m.ForwardMs:0.0}"), I($"{m.SamplerUpdateMs:0.0}"), I($"{m.VerifierMs:0.0}"), I($"{m.OtherMs:0.0}"), I($"{m.QueueMs:0.0}"),
            I($"{m.Passes:0}"), I($"{m.MeanRows:0.0}"), I($"{m.ForwardPerPassUs:0}"), I($"{m.OverheadPerPassUs:0}"));
        Row("one trajectory", one);
        foreach (var k in settings.Ks)
        {
            Row(I($"best_of_n k={k}"), cells.First(c => c.K == k).Independent);
            foreach (var c in cells.Where(c => c.K == k))
            {
                Row(I($"shared_prefix k={k} s={c.ForkStep}"), c.Shared);
            }
        }

        report.Table(components);
        if (cells.Any(c => c.Independent.ForwardMs > c.Independent.WallMs || c.Shared.ForwardMs > c.Shared.WallMs))
        {
            report.Paragraph("Some searches spent more time inside forward passes than their wall time: their step's rows went to several passes that ran at the same time (the denoiser has more than one instance, or a pass is capped below a step's rows), so *forward* sums overlapping time and *other* and the per-pass remainder mean nothing for those rows. Compare their wall times, not their parts.");
        }

        report.Paragraph(Explain(settings, one, cells));
    }

    /// <summary>Why the wall-time ratio is not the NFE ratio, in the measured numbers.</summary>
    private static string Explain(SharingSettings settings, ComponentMeans one, List<SharingCell> cells)
    {
        var perRowOne = one.ForwardPerPassUs / one.MeanRows;
        var steps = string.Join("; ", settings.Ks.Select(k =>
        {
            var m = cells.First(c => c.K == k).Independent;
            var stepRatio = m.WallMs / one.WallMs;  // both ran the same N steps
            return FormattableString.Invariant($"k = {k}: {stepRatio:0.00}× ({m.MeanRows:0} rows, forward {m.ForwardPerPassUs:0} µs = {m.ForwardPerPassUs / m.MeanRows:0} µs per row, the rest {m.OverheadPerPassUs:0} µs)");
        }));
        var widest = cells.First(c => c.K == settings.Ks.Max()).Independent;
        var perRowWide = widest.ForwardPerPassUs / widest.MeanRows;
        var rowCost = perRowWide < 0.9 * perRowOne
            ? FormattableString.Invariant($"a wider pass costs less per row ({perRowWide:0} against {perRowOne:0} µs), and the fixed per-step cost is paid once per pass however many branches share it")
            : FormattableString.Invariant($"on this CPU a wider pass costs about as much or more per row ({perRowWide:0} against {perRowOne:0} µs: the forward pass is compute-bound, and the machine was shared), so batching the branches saves little beyond the fixed per-step cost, which is paid once per pass however many branches share it");
        var worst = cells.MaxBy(c => Math.Abs(c.WallRatio - c.PredictedWallRatio))!;
        return FormattableString.Invariant(
            $"**Why wall time is not NFE.** NFE counts every sample-step alike; wall time is paid per step of the search, which is one forward pass however many branches it holds. A step of one trajectory takes {1000 * one.WallMs / settings.Steps:0} µs of wall time ({one.Passes:0} passes of {one.MeanRows:0.0} rows for {settings.Steps} steps; a guided step is two rows): {one.ForwardPerPassUs:0} µs of forward pass and {one.OverheadPerPassUs:0} µs of everything else — sampler update {1000 * one.SamplerUpdateMs / one.Passes:0} µs, verifier {1000 * one.VerifierMs / one.Passes:0} µs, and {1000 * one.OtherMs / one.Passes:0} µs outside any pass, mostly the pump waiting `MaxQueueDelay` (1 ms) for more rows that a lone search never sends. ")
            + $"A step of k branches together costs, against one trajectory's step: {steps}. "
            + $"So k branches cost less than k× in wall time because {rowCost}. "
            + FormattableString.Invariant($"shared_prefix takes s steps at one trajectory's step cost and N − s at best-of-k's, so its wall ratio is predicted by (s·T1 + (N − s)·Tk) / (N·T1) from those two measured step costs (the *predicted* column; the largest miss is {worst.WallRatio:0.00} against {worst.PredictedWallRatio:0.00} at k = {worst.K}, s = {worst.ForkStep}), while its NFE ratio is exactly k − (k−1)·s/N. ")
            + "The NFE ratio is the portable number — what a busy accelerator, whose passes are full of other requests' rows anyway, pays; the wall ratio is what one lone search waits on this machine.";
    }

    private static string I(FormattableString value) => FormattableString.Invariant(value);
}
