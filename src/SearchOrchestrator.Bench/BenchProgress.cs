using Spectre.Console;

namespace SearchOrchestrator.Bench;

/// <summary>
/// Progress bars on standard error (Spectre.Console): one per bench phase, showing the current cell, the share done,
/// the time spent and an estimate of the time left. Quiet runs show nothing.
/// </summary>
internal sealed class BenchProgress
{
    private readonly ProgressContext? _context;

    private BenchProgress(ProgressContext? context) => _context = context;

    /// <summary>Runs <paramref name="body"/> with live progress bars, or with none when <paramref name="quiet"/>.</summary>
    public static async Task<T> RunAsync<T>(bool quiet, Func<BenchProgress, Task<T>> body)
    {
        if (quiet)
        {
            return await body(new BenchProgress(null)).ConfigureAwait(false);
        }

        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
        return await console.Progress()
            .AutoClear(false)
            .HideCompleted(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn(), new SpinnerColumn())
            .StartAsync(context => body(new BenchProgress(context)))
            .ConfigureAwait(false);
    }

    /// <summary>A bar for a phase of <paramref name="total"/> units of work.</summary>
    public BenchTask Start(string phase, double total) =>
        new(_context?.AddTask(Markup.Escape(phase), maxValue: Math.Max(total, 1)), phase);
}

/// <summary>One progress bar; safe to advance from several searches at once.</summary>
internal sealed class BenchTask(ProgressTask? task, string phase)
{
    /// <summary>Shows which cell is running.</summary>
    public void Describe(string cell)
    {
        if (task is not null)
        {
            task.Description = Markup.Escape($"{phase}: {cell}");
        }
    }

    /// <summary>Counts <paramref name="units"/> as done.</summary>
    public void Advance(double units = 1) => task?.Increment(units);

    /// <summary>Marks the phase finished.</summary>
    public void Finish()
    {
        if (task is not null)
        {
            task.Description = Markup.Escape(phase);
            task.Value = task.MaxValue;
            task.StopTask();
        }
    }
}
