using System.CommandLine;
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
return await root.Parse(args).InvokeAsync().ConfigureAwait(false);
