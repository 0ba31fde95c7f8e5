using System.Diagnostics;
using System.Globalization;
using Grpc.Core;
using Grpc.Net.Client;
using SearchOrchestrator.Protos.V1;
using SearchOrchestrator.Server;

namespace SearchOrchestrator.Bench;

/// <summary>The load of <c>bench serve</c>.</summary>
internal sealed record ServeSettings
{
    public required string ModelsPath { get; init; }

    /// <summary>Requests per concurrency level (at least the concurrency).</summary>
    public required int Requests { get; init; }

    public required int Steps { get; init; }

    public required IReadOnlyList<int> Concurrency { get; init; }

    public void Validate()
    {
        if (Requests < 1)
        {
            throw new InvalidRequestException("requests", $"--requests must be at least 1, got {Requests}.");
        }

        if (Steps < 1)
        {
            throw new InvalidRequestException("steps", $"--steps must be at least 1, got {Steps}.");
        }
    }
}

/// <summary>One concurrency level of <c>bench serve</c>.</summary>
internal sealed record ServeLevel(int Concurrency, int Requests, double RequestsPerSecond, double P50LatencyMs, double P99LatencyMs, int Errors, int Exhausted, double P50OverheadMs);

/// <summary>
/// <c>searchorch bench serve</c>: starts the real server on a loopback port and drives it over gRPC at several
/// concurrencies with a fixed request mix; reports throughput, latency percentiles, errors and the server-side
/// overhead per request (latency minus the time the request's batches spent in forward passes).
/// </summary>
internal static class ServeBench
{
    public static async Task<IReadOnlyList<ServeLevel>> RunAsync(BenchContext context, ServeSettings settings, CancellationToken cancellationToken)
    {
        settings.Validate();
        await using var app = SearchOrchestratorServer.Build(["--urls", "http://127.0.0.1:0", "--Models:Path", settings.ModelsPath, "--Logging:LogLevel:Default", "Warning"]);
        await app.StartAsync(cancellationToken).ConfigureAwait(false);
        using var channel = GrpcChannel.ForAddress(app.Urls.First());
        var client = new Protos.V1.Search.SearchClient(channel);
        var n = settings.Steps;
        var levels = new List<ServeLevel>();
        var bar = context.Progress.Start("bench serve", settings.Concurrency.Sum(c => Math.Max(c, settings.Requests)));
        foreach (var concurrency in settings.Concurrency)
        {
            bar.Describe($"{concurrency} concurrent calls");
            var total = Math.Max(concurrency, settings.Requests);
            var latencies = new List<double>();
            var overheads = new List<double>();
            int errors = 0, exhausted = 0, next = -1;
            var clock = Stopwatch.StartNew();
            await Task.WhenAll(Enumerable.Range(0, concurrency).Select(async _ =>
            {
                int index;
                while ((index = Interlocked.Increment(ref next)) < total)
                {
                    var request = new GenerateRequest { Model = "counting", Condition = ((index % 9) + 1).ToString(CultureInfo.InvariantCulture), Steps = n, Guidance = 2, Seed = (ulong)index };
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

                    bar.Advance();
                }
            })).ConfigureAwait(false);
            var seconds = clock.Elapsed.TotalSeconds;
            levels.Add(new ServeLevel(concurrency, total, latencies.Count / seconds, Percentile(latencies, 0.5), Percentile(latencies, 0.99), errors, exhausted, Percentile(overheads, 0.5)));
        }

        bar.Finish();
        await app.StopAsync(CancellationToken.None).ConfigureAwait(false);

        context.Report.Heading("Serving over gRPC");
        context.Report.Paragraph(FormattableString.Invariant($"The real server on a loopback port, driven over gRPC by {n}-step best_of_n(1) requests with guidance 2, conditions 1..9 in turn. *Overhead* is latency minus the time of the forward-pass batches the request joined."));
        var table = new MarkdownTable("concurrency", "requests", "requests/s", "p50 latency", "p99 latency", "errors", "exhausted", "p50 overhead");
        foreach (var l in levels)
        {
            table.Add(I($"{l.Concurrency}"), I($"{l.Requests}"), I($"{l.RequestsPerSecond:0.0}"), I($"{l.P50LatencyMs:0.0} ms"), I($"{l.P99LatencyMs:0.0} ms"), I($"{l.Errors}"), I($"{l.Exhausted}"), I($"{l.P50OverheadMs:0.00} ms"));
        }

        context.Report.Table(table);
        context.Report.Results("serve", new { settings = new { settings.Requests, settings.Steps, settings.Concurrency }, levels });
        return levels;
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

    private static string I(FormattableString value) => FormattableString.Invariant(value);
}
