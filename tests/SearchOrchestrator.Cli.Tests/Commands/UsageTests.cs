namespace SearchOrchestrator.Cli.Tests.Commands;

/// <summary>Usage errors: one line on standard error naming the mistake, exit code 2, nothing else.</summary>
public sealed class UsageTests
{
    [Theory]
    [InlineData("generate --model counting --condition 3 --bogus", "searchorch: error: Unrecognized command or argument '--bogus'. (see 'searchorch generate --help')")]
    [InlineData("generate --model counting --steps abc", "searchorch: error: Cannot parse argument 'abc' for option '--steps' as expected type 'System.Int32'. (see 'searchorch generate --help')")]
    [InlineData("models evaluate --bogus", "searchorch: error: Unrecognized command or argument '--bogus'. (see 'searchorch models evaluate --help')")]
    [InlineData("nonsense", "searchorch: error: Required command was not provided. Unrecognized command or argument 'nonsense'. (see 'searchorch --help')")]
    [InlineData("serve --bogus-flag 1", "searchorch: error: unknown setting: --bogus-flag. No options class reads it; see README.md, Configuration reference.")]
    [InlineData("serve --Serving:MaxStep 5", "searchorch: error: unknown setting: --Serving:MaxStep (did you mean --Serving:MaxSteps?). No options class reads it; see README.md, Configuration reference.")]
    [InlineData("worker --Worker:MaxResidentByte 5", "searchorch: error: unknown setting: --Worker:MaxResidentByte (did you mean --Worker:MaxResidentBytes?). No options class reads it; see README.md, Configuration reference.")]
    [InlineData("worker stray", "searchorch: error: unexpected argument 'stray': settings are --Key value or --Key=value (see --help).")]
    [InlineData("serve --urls", "searchorch: error: --urls needs a value: --urls <value> or --urls=<value>.")]
    public async Task Searchorch_UsageError_PrintsOneLineAndExits2(string args, string expected)
    {
        var (exit, stdout, stderr) = await SearchorchProcess.RunAsync(args.Split(' '));

        Assert.Equal(2, exit);
        Assert.Equal(expected, stderr.TrimEnd('\n'));
        Assert.Empty(stdout);
    }
}
