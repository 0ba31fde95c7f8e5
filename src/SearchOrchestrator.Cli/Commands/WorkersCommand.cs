using System.CommandLine;
using SearchOrchestrator.Server.OpenInference;
using SearchOrchestrator.Workers;

namespace SearchOrchestrator.Cli.Commands;

/// <summary>
/// <c>searchorch workers</c>: join workers (or, with <c>--kserve</c>, Open Inference Protocol servers) as an orchestrator
/// would and show what they host and what their links cost.
/// </summary>
internal static class WorkersCommand
{
    public static Command Create()
    {
        var common = new CommonOptions();
        var endpoints = new Argument<string[]>("endpoints") { Description = "Worker addresses, e.g. https://gpu-3:50061.", Arity = ArgumentArity.OneOrMore };
        var secret = new Option<string?>("--secret")
        {
            Description = "The workers' shared secret (sent as x-api-key to KServe servers); default $Workers__Secret, so it need not appear on the command line.",
            DefaultValueFactory = _ => Environment.GetEnvironmentVariable("Workers__Secret"),
        };
        var kserve = new Option<string?>("--kserve") { Description = "The endpoints are Open Inference Protocol (KServe v2) servers running these of our denoisers under the same names, comma-separated (e.g. counting)." };
        var command = new Command("workers", "Describe workers (or KServe servers), check their models against the local repository, and measure their links (α, bandwidth, R²).") { endpoints, secret, kserve };
        common.AddTo(command);
        command.SetAction((parse, cancellationToken) => CommandErrors.RunAsync(async () =>
        {
            await using var host = common.CreateHost(parse, settings: parse.GetValue(secret) is { } shared ? [new($"{WorkerOptions.SectionName}:{nameof(WorkerOptions.Secret)}", shared)] : []);
            var repository = host.Repository;
            var pool = host.Pool;
            if (parse.GetValue(kserve) is { } models)
            {
                return await KServeAsync(repository, pool.Options, parse.GetValue(endpoints)!, models, parse.GetValue(secret), cancellationToken).ConfigureAwait(false);
            }

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

    private static async Task<int> KServeAsync(Onnx.Repository.ModelRepository repository, WorkerOptions pool, string[] endpoints, string models, string? secret, CancellationToken cancellationToken)
    {
        var names = models.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        if (names.Length == 0)
        {
            throw new InvalidRequestException("kserve", "name at least one of our denoisers the servers run, e.g. --kserve counting.");
        }

        Console.WriteLine("| kserve server | status | models | α | bandwidth | R² | compute 1 row | compute 8 rows |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|");
        var failed = 0;
        foreach (var endpoint in endpoints)
        {
            var options = new KServeEndpointOptions { Endpoint = endpoint, ApiKey = secret };
            foreach (var name in names)
            {
                options.Models[name] = new KServeModelOptions();
            }

            try
            {
                await using var backend = await KServeBackend.ConnectAsync(options, n => repository.Models.FirstOrDefault(m => m.Name == n && m.IsReady)?.Manifest, pool, localDecoder: n => repository.GetStages(n)?.Decoder.Description, cancellationToken: cancellationToken).ConfigureAwait(false);
                var fit = backend.Link.Fit;
                Console.WriteLine($"| {endpoint} | joined | {string.Join(", ", names)} | {fit.Latency.TotalMilliseconds:0.00} ms | {fit.BytesPerSecond / 1e6:0.0} MB/s | {fit.RSquared:0.000} | {backend.Compute.Predict(1).TotalMilliseconds:0.00} ms | {backend.Compute.Predict(8).TotalMilliseconds:0.00} ms |");
            }
            catch (Exception ex) when (ex is WorkerRefusedException or WorkerUnavailableException)
            {
                failed++;
                Console.WriteLine($"| {endpoint} | {ex.Message.Replace('|', '/')} | | | | | | |");
            }
        }

        return failed == 0 ? 0 : 1;
    }
}
