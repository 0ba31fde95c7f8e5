using System.CommandLine;
using SearchOrchestrator.Server.Workers;
using SearchOrchestrator.Workers;

namespace SearchOrchestrator.Cli.Commands;

/// <summary><c>searchorch workers</c>: join workers as an orchestrator would and show what they host and what their links cost.</summary>
internal static class WorkersCommand
{
    public static Command Create()
    {
        var common = new CommonOptions();
        var endpoints = new Argument<string[]>("endpoints") { Description = "Worker addresses, e.g. https://gpu-3:50061.", Arity = ArgumentArity.OneOrMore };
        var secret = new Option<string?>("--secret") { Description = "The workers' shared secret." };
        var command = new Command("workers", "Describe workers, check their model hashes against the local repository, and measure their links (α, bandwidth, R²).") { endpoints, secret };
        common.AddTo(command);
        command.SetAction((parse, cancellationToken) => CommandErrors.RunAsync(async () =>
        {
            using var repository = common.LoadRepository(parse);
            await using var pool = new WorkerPool(
                (e, s) => new GrpcWorkerClient(e, s, parse.GetValue(secret)),
                name => repository.Models.FirstOrDefault(m => m.Name == name)?.Manifest?.Sha256,
                new WorkerOptions());
            Console.WriteLine("| worker | status | device | provider | threads | batch | models | α | bandwidth | R² |");
            Console.WriteLine("|---|---|---|---|---|---|---|---|---|---|");
            var failed = 0;
            foreach (var endpoint in parse.GetValue(endpoints)!)
            {
                try
                {
                    var worker = await pool.JoinAsync(endpoint, cancellationToken).ConfigureAwait(false);
                    var d = worker.Description;
                    var fit = worker.Link!.Fit;
                    Console.WriteLine($"| {endpoint} | joined | {d.Device} | {d.ExecutionProvider} | {d.Threads} | {d.MaxBatchSize} | {string.Join(", ", d.Models.Select(m => m.Name))} | {fit.Latency.TotalMilliseconds:0.00} ms | {fit.BytesPerSecond / 1e6:0.0} MB/s | {fit.RSquared:0.000} |");
                }
                catch (Exception ex) when (ex is WorkerRefusedException or WorkerUnavailableException)
                {
                    failed++;
                    Console.WriteLine($"| {endpoint} | {ex.Message.Replace('|', '/')} | | | | | | | | |");
                }
            }

            return failed == 0 ? 0 : 1;
        }));
        return command;
    }
}
