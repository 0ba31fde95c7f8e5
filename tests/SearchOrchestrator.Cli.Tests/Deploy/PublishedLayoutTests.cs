using System.Diagnostics;
using SearchOrchestrator.Tests;

namespace SearchOrchestrator.Cli.Tests.Deploy;

/// <summary>
/// The container image's layout without a container engine: <c>dotnet publish -r linux-x64</c> into a clean folder,
/// the models copied beside it (as samples/deploy/docker/Dockerfile does), published once per test run.
/// </summary>
public sealed class PublishedLayout : IAsyncLifetime
{
    private readonly DirectoryInfo _root = Directory.CreateTempSubdirectory("searchorch-publish-");

    public string App => Path.Combine(_root.FullName, "app");

    public async Task InitializeAsync()
    {
        var publish = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = RepositoryPaths.Root,
        };
        foreach (var arg in new[] { "publish", "src/SearchOrchestrator.Cli", "-c", "Release", "-r", "linux-x64", "--self-contained", "false", "--nologo", "-v", "q", "-o", App })
        {
            publish.ArgumentList.Add(arg);
        }

        using var process = Process.Start(publish)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var errors = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        Assert.True(process.ExitCode == 0, $"dotnet publish failed: {await output}{await errors}");
        foreach (var file in Directory.EnumerateFiles(RepositoryPaths.Models, "model.*", SearchOption.AllDirectories))
        {
            var target = Path.Combine(App, "models", Path.GetRelativePath(RepositoryPaths.Models, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }
    }

    public Task DisposeAsync()
    {
        _root.Delete(recursive: true);
        return Task.CompletedTask;
    }

    /// <summary>Starts <c>searchorch</c> from the published folder, in it, with only <paramref name="environment"/> as settings.</summary>
    public Process Start(string command, IReadOnlyDictionary<string, string> environment)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = App,
        };
        start.ArgumentList.Add(Path.Combine(App, "searchorch.dll"));
        start.ArgumentList.Add(command);
        foreach (var name in start.Environment.Keys.Where(k => k.Contains("__", StringComparison.Ordinal) || k.StartsWith("SEARCHORCH", StringComparison.Ordinal) || k.StartsWith("ASPNETCORE", StringComparison.Ordinal)).ToList())
        {
            start.Environment.Remove(name); // nothing inherited from the test run's environment
        }

        foreach (var (name, value) in environment)
        {
            start.Environment[name] = value;
        }

        return Process.Start(start)!;
    }
}

public sealed class PublishedLayoutTests(PublishedLayout layout) : IClassFixture<PublishedLayout>
{
    [Fact]
    public void Publish_LinuxX64_CarriesOnlyThisPlatformsNatives()
    {
        Assert.True(File.Exists(Path.Combine(layout.App, "libonnxruntime.so")), "ONNX Runtime's linux-x64 library sits beside searchorch.dll");
        Assert.False(Directory.Exists(Path.Combine(layout.App, "runtimes")), "no runtimes/<rid>/ folders of other platforms");
        Assert.True(File.Exists(Path.Combine(layout.App, "models", "counting", "model.onnx")));
    }

    [Theory]
    [InlineData("serve", "searchorch: serving searched generations on ")]
    [InlineData("worker", "searchorch: worker listening on ")]
    public async Task Start_FromTheCleanFolderWithOnlyEnvironmentSettings_ServesAndIsHealthy(string command, string banner)
    {
        var environment = new Dictionary<string, string>
        {
            ["ASPNETCORE_URLS"] = "http://127.0.0.1:0",
            ["Batching__MaxBatchSize"] = "16",
            ["Models__ExecutionProvider"] = "cpu",
        };
        if (command == "worker")
        {
            environment["Worker__Secret"] = "from-the-environment";
        }

        using var server = layout.Start(command, environment);
        // Both streams are drained as they come (a full pipe would stall the server), and the banner is found wherever
        // it lands among the log lines; the output so far goes into any failure message.
        var output = new System.Text.StringBuilder();
        var listening = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        server.OutputDataReceived += (_, e) => Collect(e.Data);
        server.ErrorDataReceived += (_, e) => Collect(e.Data);
        server.Exited += (_, _) => listening.TrySetException(new InvalidOperationException($"{command} exited before listening: {Output()}"));
        server.EnableRaisingEvents = true;
        server.BeginOutputReadLine();
        server.BeginErrorReadLine();
        try
        {
            // A hang guard, not a timing assertion: the server listens within seconds on an idle machine.
            var url = await listening.Task.WaitAsync(TimeSpan.FromMinutes(3));

            var (exit, stdout) = await RunAsync(layout, url);

            Assert.True(exit == 0, $"health exited {exit}: {stdout}");
            Assert.Equal($"{url}/: Serving", stdout.TrimEnd('\n'));
        }
        finally
        {
            if (!server.HasExited)
            {
                SearchorchProcess.Terminate(server);
            }

            await server.WaitForExitAsync();
        }

        Assert.True(server.ExitCode == 0, $"{command} exited {server.ExitCode}: {Output()}");

        void Collect(string? line)
        {
            if (line is null)
            {
                return;
            }

            lock (output)
            {
                output.AppendLine(line);
            }

            if (line.IndexOf(banner, StringComparison.Ordinal) is var at and >= 0)
            {
                listening.TrySetResult(line[(at + banner.Length)..].Split(' ')[0]);
            }
        }

        string Output()
        {
            lock (output)
            {
                return output.ToString();
            }
        }
    }

    private static async Task<(int Exit, string Stdout)> RunAsync(PublishedLayout layout, string url)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = layout.App };
        foreach (var arg in new[] { Path.Combine(layout.App, "searchorch.dll"), "health", url })
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start)!;
        var stdout = await process.StandardOutput.ReadToEndAsync();
        await process.WaitForExitAsync();
        return (process.ExitCode, stdout);
    }
}
