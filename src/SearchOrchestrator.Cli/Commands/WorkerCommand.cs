using System.CommandLine;
using SearchOrchestrator.Server;

namespace SearchOrchestrator.Cli.Commands;

/// <summary><c>searchorch worker</c>: serve steps and verifications to orchestrators on other machines.</summary>
internal static class WorkerCommand
{
    public static Command Create()
    {
        var command = new Command("worker", $"Serve the worker protocol (default {SearchOrchestratorWorker.DefaultUrl}) so an orchestrator can run steps here. Settings: --urls, --models, --secret (shared with the orchestrator's Workers:Secret), --join <orchestrator url>, --advertise <this worker's url>, --Worker:MaxResidentBytes, --Batching:MaxBatchSize, --Models:IntraOpThreads, … or appsettings.json and environment variables (secret: Worker__Secret or Worker:SecretFile).")
        {
            TreatUnmatchedTokensAsErrors = false,
        };
        command.SetAction((parse, cancellationToken) => ServeCommand.HostAsync(parse.UnmatchedTokens.ToList(), SearchOrchestratorWorker.Build, url =>
            Console.WriteLine($"searchorch: worker listening on {url} (Ctrl+C stops)"), cancellationToken));
        return command;
    }
}
