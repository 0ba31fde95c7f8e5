using System.Diagnostics;
using SearchOrchestrator.Tests;

namespace SearchOrchestrator.Cli.Tests;

/// <summary>A real <c>searchorch serve</c> or <c>searchorch worker</c> process, running until disposed; its address is read from its banner.</summary>
internal sealed class ServiceProcess : IAsyncDisposable
{
    private readonly Process _process;

    private ServiceProcess(Process process, Uri address)
    {
        _process = process;
        Address = address;
    }

    public Uri Address { get; }

    /// <summary>Starts <paramref name="command"/> (serve or worker) on the embedded models and waits until it listens.</summary>
    public static async Task<ServiceProcess> StartAsync(string command, params string[] extra)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = RepositoryPaths.Root,
        };
        foreach (var arg in (string[])[Path.Combine(AppContext.BaseDirectory, "searchorch.dll"), command, "--models", RepositoryPaths.Models,
            "--Models:ExecutionProvider", "cpu", "--Models:IntraOpThreads", "1", "--Logging:LogLevel:Default", "Warning", .. extra])
        {
            start.ArgumentList.Add(arg);
        }

        var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(1));
        while (await process.StandardOutput.ReadLineAsync(timeout.Token) is { } line)
        {
            // "searchorch: serving searched generations on http://… (Ctrl+C stops)…" or "searchorch: worker listening on http://…"
            if (line.StartsWith("searchorch: ", StringComparison.Ordinal) && line.Split(' ').FirstOrDefault(w => w.StartsWith("http", StringComparison.Ordinal)) is { } url)
            {
                _ = process.StandardOutput.ReadToEndAsync(CancellationToken.None);
                return new ServiceProcess(process, new Uri(url));
            }
        }

        await process.WaitForExitAsync(timeout.Token);
        throw new InvalidOperationException($"searchorch {command} exited ({process.ExitCode}) before it listened: {await stderr}");
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
    }
}
