using System.Diagnostics;
using System.Reflection;
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

    /// <summary>The commit the running binary was built from, and the checkout it runs in when that differs.</summary>
    private static string ReadCommit()
    {
        var head = Git("rev-parse --short=12 HEAD");
        var dirty = head is not null && !string.IsNullOrWhiteSpace(Git("status --porcelain --untracked-files=no"));
        return DescribeCommit(BuiltFrom(typeof(MachineInfo).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion), head, dirty);
    }

    /// <summary>The short commit in an informational version such as <c>1.0.0+8c6c1b2bc1f8…</c> (the SDK appends the build's source revision), or null.</summary>
    internal static string? BuiltFrom(string? informationalVersion)
    {
        var revision = informationalVersion?.Split('+', 2) is [_, var sha] ? sha : null;
        return revision is { Length: >= 7 } && revision.All(char.IsAsciiHexDigit) ? revision[..Math.Min(12, revision.Length)] : null;
    }

    /// <summary>
    /// How a report names its source: the commit the binary was built from; the checkout it ran in when that is another
    /// commit (a copied binary run beside a checkout that moved on), and "+ local changes" when that checkout is dirty.
    /// </summary>
    internal static string DescribeCommit(string? built, string? head, bool dirty)
    {
        var checkout = head is null ? null : dirty ? $"{head} + local changes" : head;
        return (built, checkout) switch
        {
            (null, null) => "unknown (not a git checkout)",
            (null, _) => checkout,
            (_, null) => built,
            _ when built == head => checkout,
            _ => $"{built} (the binary's build; it ran in a checkout at {checkout})",
        };
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
