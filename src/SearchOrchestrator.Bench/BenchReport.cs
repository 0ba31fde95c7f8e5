using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace SearchOrchestrator.Bench;

/// <summary>
/// One bench run's output folder, <c>bench-results/&lt;timestamp&gt;/</c>: <c>report.md</c> (the tables, the machine,
/// the commit and the command line), <c>results.json</c> (every raw number) and the PNG plots. What is added is
/// echoed to the console unless the run is quiet.
/// </summary>
internal sealed class BenchReport
{
    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        Converters = { new JsonStringEnumConverter() },
    };

    private readonly StringBuilder _body = new();
    private readonly Dictionary<string, object> _results = new(StringComparer.Ordinal);
    private readonly TextWriter? _echo;

    private BenchReport(string folder, string title, string commandLine, MachineInfo machine, DateTimeOffset started, TextWriter? echo)
    {
        Folder = folder;
        Title = title;
        CommandLine = commandLine;
        Machine = machine;
        Started = started;
        _echo = echo;
    }

    public string Folder { get; }

    public string Title { get; }

    public string CommandLine { get; }

    public MachineInfo Machine { get; }

    public DateTimeOffset Started { get; }

    /// <summary>Plot files written so far, relative to <see cref="Folder"/>.</summary>
    public List<string> Plots { get; } = [];

    /// <summary>Creates <c>&lt;root&gt;/&lt;yyyyMMdd-HHmmss&gt;/</c> (suffixed if it exists already).</summary>
    public static BenchReport Create(string root, string title, MachineInfo machine, TimeProvider time, TextWriter? echo)
    {
        var started = time.GetUtcNow();
        var name = started.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture);
        var folder = Path.GetFullPath(Path.Combine(root, name));
        for (var i = 2; Directory.Exists(folder); i++)
        {
            folder = Path.GetFullPath(Path.Combine(root, $"{name}-{i}"));
        }

        Directory.CreateDirectory(folder);
        var commandLine = "searchorch " + string.Join(' ', Environment.GetCommandLineArgs().Skip(1).Select(Quote));
        return new BenchReport(folder, title, commandLine, machine, started, echo);
    }

    /// <summary>A level-2 heading.</summary>
    public void Heading(string text) => Append($"## {text}{Environment.NewLine}");

    /// <summary>A paragraph of prose (markdown).</summary>
    public void Paragraph(string text) => Append(text.TrimEnd() + Environment.NewLine);

    /// <summary>A table.</summary>
    public void Table(MarkdownTable table) => Append(table.ToString());

    /// <summary>Writes <paramref name="png"/> as <paramref name="fileName"/> in the folder and shows it in the report.</summary>
    public void Plot(string fileName, string caption, byte[] png)
    {
        File.WriteAllBytes(Path.Combine(Folder, fileName), png);
        Plots.Add(fileName);
        _body.AppendLine(CultureInfo.InvariantCulture, $"![{caption}]({fileName})").AppendLine();
        _echo?.WriteLine($"plot: {Path.Combine(Folder, fileName)}");
    }

    /// <summary>Raw numbers for <c>results.json</c>, under <paramref name="name"/>.</summary>
    public void Results(string name, object value) => _results[name] = value;

    /// <summary>Writes <c>report.md</c> and <c>results.json</c>; returns the report's path.</summary>
    public string Write(TimeProvider time)
    {
        var finished = time.GetUtcNow();
        var m = Machine;
        var head = new StringBuilder()
            .AppendLine(CultureInfo.InvariantCulture, $"# {Title}")
            .AppendLine()
            .AppendLine(CultureInfo.InvariantCulture, $"- command: `{CommandLine}`")
            .AppendLine(CultureInfo.InvariantCulture, $"- commit: {m.Commit}")
            .AppendLine(CultureInfo.InvariantCulture, $"- started: {Started:yyyy-MM-dd HH:mm:ss} UTC, took {(finished - Started).TotalMinutes:0.0} min")
            .AppendLine(CultureInfo.InvariantCulture, $"- machine: {m.Cpu}, {m.Cores} cores, {m.MemoryGiB} GiB; {m.OperatingSystem}")
            .AppendLine(CultureInfo.InvariantCulture, $"- software: {m.Runtime}, ONNX Runtime {m.OnnxRuntime}, execution provider {m.ExecutionProvider}")
            .AppendLine();
        var path = Path.Combine(Folder, "report.md");
        File.WriteAllText(path, head.Append(_body).ToString());
        var results = new Dictionary<string, object>(StringComparer.Ordinal)
        {
            ["title"] = Title,
            ["commandLine"] = CommandLine,
            ["started"] = Started,
            ["finished"] = finished,
            ["machine"] = Machine,
            ["plots"] = Plots,
        };
        foreach (var (key, value) in _results)
        {
            results[key] = value;
        }

        File.WriteAllText(Path.Combine(Folder, "results.json"), JsonSerializer.Serialize(results, Json));
        return path;
    }

    /// <summary>Removes the run folder and everything written to it so far.</summary>
    public void Discard()
    {
        if (Directory.Exists(Folder))
        {
            Directory.Delete(Folder, recursive: true);
        }
    }

    /// <summary>Removes the folder when the run failed before writing anything into it.</summary>
    public void DiscardIfEmpty()
    {
        if (Directory.Exists(Folder) && !Directory.EnumerateFileSystemEntries(Folder).Any())
        {
            Directory.Delete(Folder);
        }
    }

    private void Append(string markdown)
    {
        _body.AppendLine(markdown.TrimEnd()).AppendLine();
        _echo?.WriteLine(markdown.TrimEnd());
        _echo?.WriteLine();
    }

    private static string Quote(string arg) => arg.Length > 0 && arg.All(c => char.IsLetterOrDigit(c) || "-_.,=:/+".Contains(c, StringComparison.Ordinal)) ? arg : $"'{arg.Replace("'", "'\\''", StringComparison.Ordinal)}'";
}
