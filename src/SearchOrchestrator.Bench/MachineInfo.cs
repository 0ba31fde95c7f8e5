using System.Diagnostics;
using System.Runtime.InteropServices;

namespace SearchOrchestrator.Bench;

/// <summary>The machine, software and source a bench ran on, as its report states them.</summary>
internal sealed record MachineInfo
{
    public required string Cpu { get; init; }

    public required int Cores { get; init; }

    public required double MemoryGiB { get; init; }

    public required string OperatingSystem { get; init; }

    public required string Runtime { get; init; }

    public required string OnnxRuntime { get; init; }

    public required string ExecutionProvider { get; init; }

    public required string Commit { get; init; }

    /// <summary>Reads the machine now; <paramref name="executionProvider"/> is what the model repository chose.</summary>
    public static MachineInfo Read(string executionProvider) => new()
    {
        Cpu = CpuModel(),
        Cores = Environment.ProcessorCount,
        MemoryGiB = Math.Round(GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / (1024.0 * 1024 * 1024), 1),
        OperatingSystem = RuntimeInformation.OSDescription,
        Runtime = RuntimeInformation.FrameworkDescription,
        OnnxRuntime = typeof(Microsoft.ML.OnnxRuntime.InferenceSession).Assembly.GetName().Version?.ToString() ?? "unknown",
        ExecutionProvider = executionProvider,
        Commit = ReadCommit(),
    };

    private static string CpuModel()
    {
        const string cpuinfo = "/proc/cpuinfo";
        var line = File.Exists(cpuinfo) ? File.ReadLines(cpuinfo).FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal)) : null;
        return line?.Split(':', 2)[1].Trim() ?? RuntimeInformation.ProcessArchitecture.ToString();
    }

    /// <summary>The checked-out commit (with "+ local changes" when the tree is dirty), or "unknown" outside a git checkout.</summary>
    private static string ReadCommit()
    {
        var head = Git("rev-parse --short=12 HEAD");
        if (head is null)
        {
            return "unknown (not a git checkout)";
        }

        var dirty = Git("status --porcelain --untracked-files=no");
        return string.IsNullOrWhiteSpace(dirty) ? head : $"{head} + local changes";
    }

    private static string? Git(string arguments)
    {
        try
        {
            using var process = Process.Start(new ProcessStartInfo("git", arguments) { RedirectStandardOutput = true, RedirectStandardError = true });
            if (process is null)
            {
                return null;
            }

            var output = process.StandardOutput.ReadToEnd().Trim();
            process.WaitForExit();
            return process.ExitCode == 0 ? output : null;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return null; // no git on this machine
        }
    }
}
