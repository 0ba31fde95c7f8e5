using System.Buffers.Binary;
using System.Text.Json;
using SearchOrchestrator.Bench;

namespace SearchOrchestrator.Cli.Tests.Bench;

public sealed class BenchReportTests : IDisposable
{
    private static readonly MachineInfo Machine = new()
    {
        Cpu = "Test CPU",
        Cores = 2,
        MemoryGiB = 4,
        OperatingSystem = "TestOS",
        Runtime = ".NET test",
        OnnxRuntime = "1.0",
        ExecutionProvider = "cpu",
        Commit = "abc123def456",
    };

    private readonly DirectoryInfo _root = Directory.CreateTempSubdirectory("searchorch-bench-");

    public void Dispose() => _root.Delete(recursive: true);

    private sealed class FixedTime(DateTimeOffset now) : TimeProvider
    {
        public DateTimeOffset Now { get; set; } = now;

        public override DateTimeOffset GetUtcNow() => Now;
    }

    [Fact]
    public void Create_TwiceInTheSameSecond_MakesTwoTimestampedFolders()
    {
        var time = new FixedTime(new DateTimeOffset(2026, 11, 24, 5, 40, 12, TimeSpan.Zero));

        var first = BenchReport.Create(_root.FullName, "t", Machine, time, echo: null);
        var second = BenchReport.Create(_root.FullName, "t", Machine, time, echo: null);

        Assert.Equal("20261124-054012", Path.GetFileName(first.Folder));
        Assert.Equal("20261124-054012-2", Path.GetFileName(second.Folder));
        Assert.True(Directory.Exists(second.Folder));
    }

    [Fact]
    public void Write_TablesPlotsAndResults_WritesReportWithMachineCommitAndCommandLine()
    {
        var time = new FixedTime(new DateTimeOffset(2026, 11, 24, 5, 40, 0, TimeSpan.Zero));
        var report = BenchReport.Create(_root.FullName, "searchorch bench sharing", Machine, time, echo: null);
        report.Heading("Sharing");
        report.Paragraph("Some prose.");
        report.Table(new MarkdownTable("k", "NFE / N").Add("4", "2.500"));
        report.Plot("sharing.png", "the caption", [1, 2, 3]);
        report.Results("sharing", new { cells = new[] { new { k = 4, nfeRatio = 2.5, wall = double.NaN } } });
        time.Now = time.Now.AddMinutes(3);

        var path = report.Write(time);

        var text = File.ReadAllText(path);
        Assert.Equal(Path.Combine(report.Folder, "report.md"), path);
        Assert.StartsWith("# searchorch bench sharing", text, StringComparison.Ordinal);
        Assert.Contains("- command: `searchorch ", text, StringComparison.Ordinal);
        Assert.Contains("- commit: abc123def456", text, StringComparison.Ordinal);
        Assert.Contains("took 3.0 min", text, StringComparison.Ordinal);
        Assert.Contains("Test CPU, 2 cores, 4 GiB; TestOS", text, StringComparison.Ordinal);
        Assert.Contains("## Sharing", text, StringComparison.Ordinal);
        Assert.Contains("| 4 | 2.500 |", text, StringComparison.Ordinal);
        Assert.Contains("![the caption](sharing.png)", text, StringComparison.Ordinal);
        Assert.Equal([1, 2, 3], File.ReadAllBytes(Path.Combine(report.Folder, "sharing.png")));

        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(report.Folder, "results.json")));
        var root = json.RootElement;
        Assert.Equal("abc123def456", root.GetProperty("machine").GetProperty("commit").GetString());
        Assert.Equal("sharing.png", root.GetProperty("plots")[0].GetString());
        var cell = root.GetProperty("sharing").GetProperty("cells")[0];
        Assert.Equal(2.5, cell.GetProperty("nfeRatio").GetDouble());
        Assert.Equal("NaN", cell.GetProperty("wall").GetString());
    }

    [Fact]
    public void Lines_TwoSeries_ReturnsAPngOfThePlotSize()
    {
        var png = BenchPlots.Lines("title", "x", "y", [new PlotSeries("a", [0, 1], [2, 1]), new PlotSeries("b", [0, 0.5], [1, 1], Dashed: true)], yMin: 0);

        Assert.Equal(new byte[] { 0x89, 0x50, 0x4E, 0x47 }, png[..4]);
        Assert.Equal(BenchPlots.Width, BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(16)));
        Assert.Equal(BenchPlots.Height, BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(20)));
    }

    [Fact]
    public void RawAt_BetweenMeasuredSizes_InterpolatesLinearly()
    {
        RawPoint[] raw = [new(2, 100, 1.0, 200), new(16, 20, 1.0, 320), new(32, 12, 1.0, 384)]; // 200, 320, 384 rows/s

        Assert.Equal(200, EngineBench.RawAt(raw, 1));
        Assert.Equal(260, EngineBench.RawAt(raw, 9), 9);
        Assert.Equal(352, EngineBench.RawAt(raw, 24), 9);
        Assert.Equal(384, EngineBench.RawAt(raw, 64));
    }
}
