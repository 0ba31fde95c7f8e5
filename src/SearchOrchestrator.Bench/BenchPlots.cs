using ScottPlot;

namespace SearchOrchestrator.Bench;

/// <summary>One line on a plot: its legend text, points, and how it is drawn.</summary>
internal sealed record PlotSeries(string Label, double[] X, double[] Y, bool Dashed = false, bool Markers = true, bool Line = true, int ColorIndex = -1);

/// <summary>The benches' PNG plots (ScottPlot), all drawn the same way: lines with markers, a legend, labelled axes.</summary>
internal static class BenchPlots
{
    public const int Width = 1100;
    public const int Height = 560;

    /// <summary>Draws <paramref name="series"/> on one pair of axes and returns the PNG.</summary>
    public static byte[] Lines(string title, string xLabel, string yLabel, IReadOnlyList<PlotSeries> series, double? yMin = null, double? yMax = null, bool logX = false)
    {
        var plot = new Plot();
        var palette = new ScottPlot.Palettes.Category10();
        for (var i = 0; i < series.Count; i++)
        {
            var s = series[i];
            var xs = logX ? s.X.Select(Math.Log2).ToArray() : s.X;
            var scatter = plot.Add.Scatter(xs, s.Y);
            scatter.LegendText = s.Label;
            scatter.Color = palette.GetColor(s.ColorIndex >= 0 ? s.ColorIndex : i);
            scatter.LineWidth = s.Line ? 2 : 0;
            scatter.LinePattern = s.Dashed ? LinePattern.Dashed : LinePattern.Solid;
            scatter.MarkerSize = s.Markers ? 8 : 0;
        }

        if (logX)
        {
            var ticks = series[0].X.Distinct().Order().ToArray(); // the first series' x values label the axis
            plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(ticks.Select(Math.Log2).ToArray(), ticks.Select(t => t.ToString("0.##", System.Globalization.CultureInfo.InvariantCulture)).ToArray());
        }

        plot.Title(title);
        plot.XLabel(logX ? $"{xLabel} (log scale)" : xLabel);
        plot.YLabel(yLabel);
        plot.ShowLegend(Edge.Right); // beside the axes, so it never hides a line
        plot.Axes.AutoScale();
        if (yMin is not null || yMax is not null)
        {
            var limits = plot.Axes.GetLimits();
            plot.Axes.SetLimitsY(yMin ?? limits.Bottom, yMax ?? limits.Top);
        }

        return plot.GetImageBytes(Width, Height, ImageFormat.Png);
    }
}
