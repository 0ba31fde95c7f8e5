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
        command.SetAction((parse, cancellationToken) => HostAsync(parse.UnmatchedTokens.ToList(), SearchOrchestratorServer.Build, url =>
        {
            Console.WriteLine($"searchorch: serving searched generations on {url} (Ctrl+C stops). Try:");
            Console.WriteLine($"  grpcurl -plaintext -d '{{\"model\":\"counting\",\"condition\":\"7\",\"guidance\":2,\"eta\":0.5,\"sharedPrefix\":{{\"k\":4,\"forkAt\":25}},\"verifiers\":[\"count-verifier\"]}}' {new Uri(url).Authority} searchorchestrator.v1.Search/Generate");
            Console.WriteLine($"  dotnet run --project samples/CSharpClient -- {url} 7");
            Console.WriteLine($"  curl -s {url}/v1/images/generations -H 'content-type: application/json' -d '{{\"model\":\"counting\",\"prompt\":\"7\"}}'");
            Console.WriteLine($"Search-tree viewer: {url}/viewer/   HTTP/JSON: {url}/api/v1/models (OpenAPI {url}/openapi/v1.json)   metrics: {url}/metrics");
        }, cancellationToken));
        return command;
    }

    /// <summary>Every argument must be a setting: <c>--Key value</c>, <c>--Key=value</c> or a short form with its value.</summary>
    internal static void CheckArguments(IReadOnlyList<string> args)
    {
        for (var i = 0; i < args.Count; i++)
        {
            var arg = args[i];
            if (!arg.StartsWith('-') && !arg.StartsWith('/'))
            {
                throw new InvalidOperationException($"unexpected argument '{arg}': settings are --Key value or --Key=value (see --help).");
            }

            if (!arg.Contains('=', StringComparison.Ordinal) && ++i >= args.Count)
            {
                throw new InvalidOperationException($"{arg} needs a value: {arg} <value> or {arg}=<value>.");
            }
        }
    }

    /// <summary>
    /// Builds and runs a host until Ctrl+C: the embedded models unless a models folder is named, one-line errors for
    /// settings the operator can fix, and a banner once it listens.
    /// </summary>
    internal static async Task<int> HostAsync(List<string> args, Func<string[], IReadOnlyDictionary<string, string?>, Microsoft.AspNetCore.Builder.WebApplication> build, Action<string> started, CancellationToken cancellationToken)
    {
        // The model repository's last default (below the command line, the environment and appsettings.json):
        // $SEARCHORCH_MODELS, else the nearest ./models upward from the working directory.
        var defaults = new Dictionary<string, string?>();
        if ((Environment.GetEnvironmentVariable("SEARCHORCH_MODELS") ?? CommonOptions.FindNearestModels()) is { Length: > 0 } models)
        {
            defaults[$"{Onnx.Runtime.ModelRepositoryOptions.SectionName}:Path"] = models;
        }

        Microsoft.AspNetCore.Builder.WebApplication app;
        try
        {
            CheckArguments(args);
            app = build([.. args], defaults);
            await app.StartAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is InvalidOperationException or Microsoft.Extensions.Options.OptionsValidationException or IOException or DirectoryNotFoundException or FormatException)
        {
            // A setting the operator can fix (bad option, busy port, missing folder): one line, not a stack trace.
            await Console.Error.WriteLineAsync($"searchorch: error: {ex.Message}").ConfigureAwait(false);
            return CommandErrors.Usage;
        }

        await using var running = app;
        started(app.Urls.First());
        try
        {
            await app.WaitForShutdownAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }

        await app.StopAsync(CancellationToken.None).ConfigureAwait(false);
        return Environment.ExitCode; // a worker its orchestrator refused sets 3
    }
}
