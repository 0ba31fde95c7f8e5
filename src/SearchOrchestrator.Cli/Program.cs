using System.CommandLine;
using System.CommandLine.Help;
using System.Runtime.InteropServices;
using SearchOrchestrator.Cli.Commands;

var root = new RootCommand("searchorch: verifier-guided search over diffusion trajectories, served through ONNX Runtime.");
root.Subcommands.Add(ServeCommand.Create());
root.Subcommands.Add(WorkerCommand.Create());
root.Subcommands.Add(WorkersCommand.Create());
root.Subcommands.Add(GenerateCommand.Create());
root.Subcommands.Add(ModelsCommand.Create());
root.Subcommands.Add(StrategiesCommand.Create());
root.Subcommands.Add(BenchCommand.Create());
root.Subcommands.Add(EstimateCommand.Create());
root.Subcommands.Add(HealthCommand.Create());

var parse = root.Parse(args.Length == 0 ? ["--help"] : args);
if (parse.Errors.Count > 0 && parse.Action is not HelpAction)
{
    // A usage error is one line and exit code 2, never the whole help page.
    var names = new List<string>();
    for (var result = parse.CommandResult; result.Command is not RootCommand; result = (System.CommandLine.Parsing.CommandResult)result.Parent!)
    {
        names.Insert(0, result.Command.Name);
    }

    var help = string.Join(' ', ["searchorch", .. names, "--help"]);
    await Console.Error.WriteLineAsync($"searchorch: error: {string.Join(" ", parse.Errors.Select(e => e.Message))} (see '{help}')").ConfigureAwait(false);
    return CommandErrors.Usage;
}

// Ctrl+C and SIGTERM cancel the command's token; each command stops, cleans up, says so and exits 130.
// A second Ctrl+C ends the process at once.
using var stop = new CancellationTokenSource();
void Stop(PosixSignalContext context)
{
    context.Cancel = !stop.IsCancellationRequested;
    stop.Cancel();
}

using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, Stop);
using var terminate = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Stop);
return await parse.InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = null }, stop.Token).ConfigureAwait(false);
