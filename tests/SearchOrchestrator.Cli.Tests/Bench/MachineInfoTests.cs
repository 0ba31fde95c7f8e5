using SearchOrchestrator.Bench;

namespace SearchOrchestrator.Cli.Tests.Bench;

public sealed class MachineInfoTests
{
    [Theory]
    [InlineData("1.0.0+8c6c1b2bc1f8c6ce76d6e96483df67963b42204d", "8c6c1b2bc1f8")]
    [InlineData("1.0.0+8c6c1b2", "8c6c1b2")]
    [InlineData("1.0.0", null)]
    [InlineData("1.0.0+local", null)]
    [InlineData(null, null)]
    public void BuiltFrom_InformationalVersion_IsItsSourceRevision(string? version, string? expected) =>
        Assert.Equal(expected, MachineInfo.BuiltFrom(version));

    [Theory]
    [InlineData("8c6c1b2bc1f8", "8c6c1b2bc1f8", false, "8c6c1b2bc1f8")]
    [InlineData("8c6c1b2bc1f8", "8c6c1b2bc1f8", true, "8c6c1b2bc1f8 + local changes")]
    [InlineData("8c6c1b2bc1f8", null, false, "8c6c1b2bc1f8")]
    [InlineData("8c6c1b2bc1f8", "73dab0f00000", true, "8c6c1b2bc1f8 (the binary's build; it ran in a checkout at 73dab0f00000 + local changes)")]
    [InlineData(null, "73dab0f00000", false, "73dab0f00000")]
    [InlineData(null, null, false, "unknown (not a git checkout)")]
    public void DescribeCommit_BuildAndCheckout_NamesTheBinarysCommitFirst(string? built, string? head, bool dirty, string expected) =>
        Assert.Equal(expected, MachineInfo.DescribeCommit(built, head, dirty));

    [Fact]
    public void Read_ThisBuild_NamesACommitOrSaysUnknown()
    {
        var commit = MachineInfo.Read("cpu").Commit;

        Assert.Matches("^([0-9a-f]{7,12}|unknown \\(not a git checkout\\))", commit);
    }
}
