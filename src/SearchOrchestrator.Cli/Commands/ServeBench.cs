using System.CommandLine;
using System.Diagnostics;
using Grpc.Core;
using Grpc.Net.Client;
using SearchOrchestrator.Protos.V1;
using SearchOrchestrator.Server;

namespace SearchOrchestrator.Cli.Commands;

/// <summary>
/// <c>searchorch bench serve</c>: starts the real server on a loopback port and drives it over gRPC at several
/// concurrencies with a fixed request mix; prints throughput, latency percentiles, errors and the server-side
/// overhead per request (latency minus the time the request's batches spent in forward passes).
/// </summary>
internal static class ServeBench
{
    public static Command Create()
    {
        var models = new Option<string?>("--models") { Description = "The model repository (default: the nearest ./models)." };
        var requests = new Option<int>("--requests") { Description = "Requests per concurrency level (at least the concurrency).", DefaultValueFactory = _ => 256 };
        var steps = new Option<int>("--steps") { Description = "Sampling steps of each request.", DefaultValueFactory = _ => 10 };
        var command = new Command("serve", "Load the gRPC server over loopback at concurrency 1, 8, 64 and 256.") { models, requests, steps };
        command.SetAction((parse, cancellationToken) => CommandErrors.RunAsync(async () =>
        {
            var path = parse.GetValue(models) ?? CommonOptions.FindNearestModels() ?? throw new InvalidRequestException("models", "no model repository found: pass --models <folder>.");
            await using var app = SearchOrchestratorServer.Build(["--urls", "http://127.0.0.1:0", "--Models:Path", path, "--Serving:MetricsPort", "0", "--Logging:LogLevel:Default", "Warning"]);
            await app.StartAsync(cancellationToken).ConfigureAwait(false);
            using var channel = GrpcChannel.ForAddress(app.Urls.First());
            var client = new Protos.V1.Search.SearchClient(channel);
            var n = parse.GetValue(steps);

            Console.WriteLine($"bench serve: {n}-step best_of_n(1) requests with guidance 2, conditions 1..9 in turn, over loopback gRPC; {Environment.ProcessorCount} cores");
            Console.WriteLine();
            Console.WriteLine("| concurrency | requests | requests/s | p50 latency | p99 latency | errors | exhausted | p50 overhead |");
            Console.WriteLine("|---|---|---|---|---|---|---|---|");
            foreach (var concurrency in new[] { 1, 8, 64, 256 })
            {
                var total = Math.Max(concurrency, parse.GetValue(requests));
                var latencies = new List<double>();
                var overheads = new List<double>();
                int errors = 0, exhausted = 0, next = -1;
                var clock = Stopwatch.StartNew();
                await Task.WhenAll(Enumerable.Range(0, concurrency).Select(async _ =>
                {
                    while (Interlocked.Increment(ref next) < total)
                    {
                        var request = new GenerateRequest { Model = "counting", Condition = ((next % 9) + 1).ToString(System.Globalization.CultureInfo.InvariantCulture), Steps = n, Guidance = 2, Seed = (ulong)next };
                        var started = Stopwatch.GetTimestamp();
                        try
                        {
                            var response = await client.GenerateAsync(request, cancellationToken: cancellationToken).ConfigureAwait(false);
                            var latency = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
                            lock (latencies)
                            {
                                latencies.Add(latency);
                                overheads.Add(latency - response.Cost.ComputeMs);
                            }
                        }
                        catch (RpcException ex) when (ex.StatusCode == StatusCode.ResourceExhausted)
                        {
                            Interlocked.Increment(ref exhausted);
                        }
                        catch (RpcException)
                        {
                            Interlocked.Increment(ref errors);
                        }
                    }
                })).ConfigureAwait(false);
                var seconds = clock.Elapsed.TotalSeconds;
                Console.Error.WriteLine($"concurrency {concurrency}: {total} requests in {seconds:0.0} s");
                Console.WriteLine(FormattableString.Invariant(
                    $"| {concurrency} | {total} | {latencies.Count / seconds:0.0} | {Percentile(latencies, 0.5):0.0} ms | {Percentile(latencies, 0.99):0.0} ms | {errors} | {exhausted} | {Percentile(overheads, 0.5):0.00} ms |"));
            }

            await app.StopAsync(CancellationToken.None).ConfigureAwait(false);
            return 0;
        }));
        return command;
    }

    private static double Percentile(List<double> values, double p)
    {
        if (values.Count == 0)
        {
            return double.NaN;
        }

        var sorted = values.Order().ToList();
        return sorted[Math.Min(sorted.Count - 1, (int)Math.Ceiling(p * sorted.Count) - 1)];
    }
}
