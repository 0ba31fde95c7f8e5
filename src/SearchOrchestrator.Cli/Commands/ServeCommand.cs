using System.CommandLine;
using Microsoft.Extensions.Hosting;
using SearchOrchestrator.Server;

namespace SearchOrchestrator.Cli.Commands;

/// <summary><c>searchorch serve</c>: the gRPC search service on the embedded (or configured) models.</summary>
internal static class ServeCommand
{
    public static Command Create()
    {
        var command = new Command("serve", $"Serve searched generations over gRPC (default {SearchOrchestratorServer.DefaultUrl}). Settings: --urls, --Models:Path, --Verifiers:Path, --Batching:MaxBatchSize, … or appsettings.json and environment variables.")
        {
            TreatUnmatchedTokensAsErrors = false,
        };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var args = parse.UnmatchedTokens.ToList();
            if (!args.Any(a => a.StartsWith("--Models:Path", StringComparison.OrdinalIgnoreCase)) && FindModels() is { } models)
            {
                args.AddRange(["--Models:Path", models]);
            }

            await using var app = SearchOrchestratorServer.Build([.. args]);
            await app.StartAsync(cancellationToken).ConfigureAwait(false);
            var url = app.Urls.First();
            Console.WriteLine($"searchorch: serving searched generations on {url} (Ctrl+C stops). Try:");
            Console.WriteLine($"  grpcurl -plaintext -d '{{\"model\":\"counting\",\"condition\":\"7\",\"guidance\":2,\"eta\":0.5,\"sharedPrefix\":{{\"k\":4,\"forkAt\":25}},\"verifiers\":[\"count-verifier\"]}}' {new Uri(url).Authority} searchorchestrator.v1.Search/Generate");
            try
            {
                await app.WaitForShutdownAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
            }

            await app.StopAsync(CancellationToken.None).ConfigureAwait(false);
            return 0;
        });
        return command;
    }

    private static string? FindModels()
    {
        for (var dir = new DirectoryInfo(Environment.CurrentDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "models");
            if (File.Exists(Path.Combine(candidate, "counting", "model.json")))
            {
                return candidate;
            }
        }

        return null;
    }
}
