using System.Diagnostics;
using System.Globalization;
using SearchOrchestrator.Search;

namespace SearchOrchestrator.Cli.Commands;

/// <summary>
/// Progress of long work on standard error (standard output keeps the results): nothing for work that ends within
/// the first period, then NFE spent against the plan, refreshed in place on a terminal and a line per period otherwise.
/// </summary>
internal static class ProgressLine
{
    /// <summary>Reports on <paramref name="runs"/> until every one completes; returns their results in order.</summary>
    public static async Task<SearchResult[]> WatchAsync(IReadOnlyList<SearchRun> runs, long plannedNfe, CancellationToken cancellationToken)
    {
        var all = Task.WhenAll(runs.Select(r => r.Completion));
        var terminal = !Console.IsErrorRedirected;
        var period = terminal ? TimeSpan.FromSeconds(1) : TimeSpan.FromSeconds(10);
        var clock = Stopwatch.StartNew();
        var shown = false;
        using (var timer = new PeriodicTimer(period))
        {
            while (!all.IsCompleted)
            {
                var tick = timer.WaitForNextTickAsync(cancellationToken).AsTask();
                if (await Task.WhenAny(all, tick).ConfigureAwait(false) == all)
                {
                    break;
                }

                await tick.ConfigureAwait(false); // throws when cancelled
                var nfe = runs.Sum(r => r.Progress().Nfe);
                var line = string.Create(CultureInfo.InvariantCulture, $"  {nfe:N0} / {plannedNfe:N0} NFE ({Math.Min(1.0, (double)nfe / Math.Max(1, plannedNfe)):P0}), {clock.Elapsed.TotalSeconds:0} s");
                await Console.Error.WriteAsync(terminal ? $"\r{line}   " : line + Environment.NewLine).ConfigureAwait(false);
                shown = true;
            }
        }

        if (shown && terminal)
        {
            await Console.Error.WriteLineAsync().ConfigureAwait(false);
        }

        return await all.ConfigureAwait(false);
    }
}
