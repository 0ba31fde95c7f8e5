using System.Diagnostics;
using System.Reflection;

namespace SearchOrchestrator.Bench;

/// <summary>Worker processes a benchmark starts on loopback (this same executable in <c>worker</c> mode), stopped on dispose.</summary>
internal sealed class WorkerProcesses : IAsyncDisposable
{
    private readonly List<Process> _processes = [];

    public List<string> Urls { get; } = [];

    /// <summary>Starts one worker per entry of <paramref name="extraArguments"/> and waits until each listens.</summary>
    public static async Task<WorkerProcesses> StartAsync(string models, IReadOnlyList<string[]> extraArguments, CancellationToken cancellationToken)
    {
        var started = new WorkerProcesses();
        try
        {
            foreach (var extra in extraArguments)
            {
                var start = Self();
                foreach (var arg in (string[])["worker", "--urls", "http://127.0.0.1:0", "--models", models, "--Logging:LogLevel:Default", "Warning", .. extra])
                {
                    start.ArgumentList.Add(arg);
                }

                start.RedirectStandardOutput = true;
                start.RedirectStandardError = true;
                var process = Process.Start(start) ?? throw new InvalidOperationException("could not start a worker process.");
                started._processes.Add(process);
                process.ErrorDataReceived += (_, _) => { };
                process.BeginErrorReadLine();
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                timeout.CancelAfter(TimeSpan.FromMinutes(1));
                const string Banner = "searchorch: worker listening on ";
                while (await process.StandardOutput.ReadLineAsync(timeout.Token).ConfigureAwait(false) is { } line)
                {
                    if (line.StartsWith(Banner, StringComparison.Ordinal))
                    {
                        started.Urls.Add(line[Banner.Length..].Split(' ')[0]);
                        _ = process.StandardOutput.ReadToEndAsync(CancellationToken.None);
                        break;
                    }
                }

                if (started.Urls.Count != started._processes.Count)
                {
                    throw new InvalidOperationException("a worker process exited before it listened.");
                }
            }

            return started;
        }
        catch
        {
            await started.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var process in _processes)
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
                await process.WaitForExitAsync().ConfigureAwait(false);
            }

            process.Dispose();
        }
    }

    /// <summary>This executable: the apphost itself, or <c>dotnet searchorch.dll</c>.</summary>
    private static ProcessStartInfo Self()
    {
        var host = Environment.ProcessPath ?? "dotnet";
        var start = new ProcessStartInfo(host);
        if (Path.GetFileNameWithoutExtension(host) == "dotnet")
        {
            start.ArgumentList.Add(Assembly.GetEntryAssembly()!.Location);
        }

        return start;
    }
}
