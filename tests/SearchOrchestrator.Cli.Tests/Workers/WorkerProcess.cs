using System.Diagnostics;
using SearchOrchestrator.Tests;

namespace SearchOrchestrator.Cli.Tests.Workers;

/// <summary>A real <c>searchorch worker</c> (or <c>serve</c>) process on a free loopback port.</summary>
internal sealed class WorkerProcess : IAsyncDisposable
{
    private readonly Process _process;

    private WorkerProcess(Process process, string url)
    {
        _process = process;
        Url = url;
    }

    public string Url { get; }

    public int Pid => _process.Id;

    public static Task<WorkerProcess> StartAsync(params string[] extra) => StartAsync("worker", "searchorch: worker listening on ", RepositoryPaths.Models, extra);

    /// <summary>Starts a worker over the model repository at <paramref name="models"/>.</summary>
    public static Task<WorkerProcess> StartWithModelsAsync(string models, params string[] extra) => StartAsync("worker", "searchorch: worker listening on ", models, extra);

    /// <summary>Starts <c>searchorch serve</c> instead of a worker.</summary>
    public static Task<WorkerProcess> StartServeAsync(params string[] extra) =>
        StartAsync("serve", "searchorch: serving searched generations on ", RepositoryPaths.Models, extra);

    private static async Task<WorkerProcess> StartAsync(string command, string banner, string models, string[] extra)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = RepositoryPaths.Root,
        };
        foreach (var arg in (string[])[Path.Combine(AppContext.BaseDirectory, "searchorch.dll"), command, "--urls", "http://127.0.0.1:0", "--models", models,
            "--Models:ExecutionProvider", "cpu", "--Models:IntraOpThreads", "1", "--Logging:LogLevel:Default", "Warning", .. extra])
        {
            start.ArgumentList.Add(arg);
        }

        var process = Process.Start(start)!;
        process.ErrorDataReceived += (_, _) => { };
        process.BeginErrorReadLine();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(1));
        while (await process.StandardOutput.ReadLineAsync(timeout.Token) is { } line)
        {
            if (line.StartsWith(banner, StringComparison.Ordinal))
            {
                var url = line[banner.Length..].Split(' ')[0];
                _ = process.StandardOutput.ReadToEndAsync(CancellationToken.None);
                return new WorkerProcess(process, url);
            }
        }

        throw new InvalidOperationException($"searchorch {command} exited ({process.ExitCode}) before it listened.");
    }

    /// <summary>Kills the process at once: everything it held is gone.</summary>
    public void Kill() => _process.Kill(entireProcessTree: true);

    /// <summary>Freezes (SIGSTOP) or thaws (SIGCONT) the process: a hung worker.</summary>
    public void Signal(string signal)
    {
        using var kill = Process.Start("kill", ["-" + signal, Pid.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        kill.WaitForExit();
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            Signal("CONT");
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
    }
}
