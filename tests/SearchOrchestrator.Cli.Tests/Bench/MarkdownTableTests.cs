using SearchOrchestrator.Bench;

namespace SearchOrchestrator.Cli.Tests.Bench;

public sealed class MarkdownTableTests
{
    [Fact]
    public void ToString_TwoRows_WritesHeaderRuleAndRows()
    {
        var table = new MarkdownTable("k", "m").Add("2", "1.500").Add("4", "2.500");

        var text = table.ToString().ReplaceLineEndings("\n");

        Assert.Equal("| k | m |\n|---|---|\n| 2 | 1.500 |\n| 4 | 2.500 |\n", text);
    }

    [Fact]
    public void ToString_CellWithPipe_EscapesIt()
    {
        var text = new MarkdownTable("mode").Add("resample|prune").ToString();

        Assert.Contains(@"| resample\|prune |", text, StringComparison.Ordinal);
    }

    [Fact]
    public void Add_WrongNumberOfCells_ThrowsNamingBothCounts()
    {
        var table = new MarkdownTable("a", "b");

        var error = Assert.Throws<ArgumentException>(() => table.Add("1"));

        Assert.Contains("1 cells for a table of 2 columns", error.Message, StringComparison.Ordinal);
    }
}
