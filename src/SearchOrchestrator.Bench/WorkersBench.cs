using System.Diagnostics;
using System.Globalization;
using SearchOrchestrator.Links;
using SearchOrchestrator.Onnx.Manifests;
using SearchOrchestrator.Onnx.Repository;
using SearchOrchestrator.Scheduling;
using SearchOrchestrator.Search;
using SearchOrchestrator.Server.OpenInference;
using SearchOrchestrator.Server.Workers;
using SearchOrchestrator.Strategies;
using SearchOrchestrator.Workers;

namespace SearchOrchestrator.Bench;

/// <summary>
/// <c>searchorch bench links</c> and <c>searchorch bench workers</c>: the measured cost of worker links, and the same
/// searched workload run locally, on stateless workers, on resident workers and on the same workers as Open Inference
/// Protocol (kserve) servers, side by side in one run.
/// </summary>
internal static class WorkersBench
{
    private static readonly CultureInfo Invariant = CultureInfo.InvariantCulture;

    /// <summary>
    /// Probes each worker link at several payload sizes and prints α, β (as bandwidth), R² and transfer time by payload
    /// size; with an injected link, compares the fit with what was injected. Starts one loopback worker when
    /// <see cref="LinksSettings.Workers"/> is empty.
    /// </summary>
    public static async Task<int> LinksAsync(ModelRepository repository, LinksSettings settings, CancellationToken cancellationToken)
    {
        var injectedLatency = settings.InjectedLatencyMs;
        var injectedBandwidth = settings.InjectedBandwidthMBps * 1e6;
        var injected = injectedLatency > 0 || injectedBandwidth > 0;
        if (injected && (injectedLatency < 0 || injectedBandwidth <= 0))
        {
            throw new InvalidRequestException("inject-bandwidth", "an injected link needs a positive --inject-bandwidth (MB/s) and a non-negative --inject-latency-ms.");
        }

        await using var started = settings.Workers.Count == 0
            ? await WorkerProcesses.StartAsync(repository.RootPath, [[]], cancellationToken).ConfigureAwait(false)
            : null;
        var endpoints = started?.Urls ?? [.. settings.Workers];
        var sizes = new[] { 0, 65536, 262144, 524288, 1048576 };
        var options = new WorkerOptions { ProbeSizes = sizes, ProbeRepeats = Math.Max(1, settings.Repeats) };
        string? Hash(string name) => repository.Models.FirstOrDefault(m => m.Name == name)?.Manifest?.Sha256;

        Console.WriteLine($"bench links: {endpoints.Count} worker(s), payloads {string.Join(", ", sizes.Select(s => Bytes(s)))}, {options.ProbeRepeats} probes each (the fit keeps the fastest of each size){(injected ? $"; injected link: {injectedLatency:0.#} ms + {injectedBandwidth / 1e6:0.#} MB/s" : string.Empty)}");
        Console.WriteLine();
        Console.WriteLine("| link | α | bandwidth | R² | " + string.Join(" | ", sizes.Select(s => $"{Bytes(s)} measured / fitted")) + " |");
        Console.WriteLine("|---|---|---|---|" + string.Concat(sizes.Select(_ => "---|")));
        foreach (var endpoint in endpoints)
        {
            await using var plain = new WorkerPool((e, session) => new GrpcWorkerClient(e, session, settings.Secret), Hash, options);
            var baseline = (await plain.JoinAsync(endpoint, cancellationToken).ConfigureAwait(false)).Link!;
            Row(endpoint, baseline);
            if (!injected)
            {
                continue;
            }

            await using var throttled = new WorkerPool((e, session) => new GrpcWorkerClient(e, session, settings.Secret, new LinkThrottle(TimeSpan.FromMilliseconds(injectedLatency), injectedBandwidth)), Hash, options);
            var link = (await throttled.JoinAsync(endpoint, cancellationToken).ConfigureAwait(false)).Link!;
            Row($"{endpoint} + injected", link);
            var alpha = (link.Fit.Latency - baseline.Fit.Latency).TotalMilliseconds;
            var bw = 1 / (link.Fit.SecondsPerByte - baseline.Fit.SecondsPerByte);
            Console.WriteLine();
            Console.WriteLine($"injected vs fitted (fit with the link minus fit without): α {injectedLatency:0.0} ms vs {alpha:0.0} ms ({(alpha / injectedLatency) - 1:+0%;-0%}), bandwidth {injectedBandwidth / 1e6:0.0} vs {bw / 1e6:0.0} MB/s ({(bw / injectedBandwidth) - 1:+0%;-0%}): {(Math.Abs((alpha / injectedLatency) - 1) <= 0.2 && Math.Abs((bw / injectedBandwidth) - 1) <= 0.2 ? "within 20%" : "NOT within 20%")}");
        }

        return 0;

        void Row(string name, LinkCostModel link)
        {
            var fit = link.Fit;
            var measured = link.Samples();
            Console.WriteLine($"| {name} | {fit.Latency.TotalMilliseconds:0.00} ms | {fit.BytesPerSecond / 1e6:0.0} MB/s | {fit.RSquared:0.000} | "
                + string.Join(" | ", sizes.Select(s =>
                {
                    // A probe's bytes on the wire are its payload plus a few bytes of protobuf framing.
                    var (bytes, seconds) = measured.MinBy(m => Math.Abs(m.Key - s));
                    return $"{seconds * 1e3:0.00} / {fit.Predict(bytes).TotalMilliseconds:0.00} ms";
                })) + " |");
        }
    }

    /// <summary>
    /// The same searched workload locally, on two loopback workers in stateless mode, in resident mode and as KServe v2
    /// servers; then placement with heterogeneous workers.
    /// </summary>
    public static async Task<int> WorkersAsync(ModelRepository repository, IModelProvider catalog, WorkersSettings settings, CancellationToken cancellationToken)
    {
        s_quiet = settings.Quiet;
        var n = settings.Steps;
        var count = Math.Max(1, settings.Searches);
        var inFlight = Math.Max(1, settings.Concurrency);
        var denoiser = repository.GetDenoiser("counting");
        var requests = Enumerable.Range(0, count).Select(i => new SearchRequest
        {
            Model = denoiser.Description.Name,
            Condition = denoiser.Description.Conditions.Labels[i % denoiser.Description.Conditions.Labels.Count],
            Steps = n,
            Guidance = 2,
            Eta = 0.5,
            Seed = (ulong)(1000 + i),
            Strategy = new SharedPrefixStrategy(4, n / 2),
            Verifiers = ["count-verifier"],
            Candidates = 4,
        }).ToList();

        string? Hash(string name) => repository.Models.FirstOrDefault(m => m.Name == name)?.Manifest?.Sha256;
        ModelManifest? Manifest(string name) => repository.Models.FirstOrDefault(m => m.Name == name && m.IsReady)?.Manifest;
        Denoising.DenoiserDescription? Describe(string name) => name == denoiser.Description.Name ? denoiser.Description : null;
        Console.WriteLine($"bench workers: {count} shared_prefix searches (k = 4, N = {n}, fork at {n / 2}, guidance 2, η 0.5), {inFlight} in flight; {Environment.ProcessorCount} cores; workers are `searchorch worker` processes on loopback with 1 intra-op thread each");
        Console.WriteLine();
        var kserveNote = string.Empty;
        await using (var workers = await WorkerProcesses.StartAsync(repository.RootPath, [["--Models:IntraOpThreads", "1"], ["--Models:IntraOpThreads", "1"]], cancellationToken).ConfigureAwait(false))
        {
            Console.WriteLine("| mode | searches/s | bytes per search | bytes per step | transfer ms per search | replay NFE | same candidates as local |");
            Console.WriteLine("|---|---|---|---|---|---|---|");
            var local = await RunAsync("local", new SearchEngine(catalog), requests, inFlight, cancellationToken).ConfigureAwait(false);
            Print("local", local, local);
            foreach (var mode in new[] { WorkerModes.Stateless, WorkerModes.Resident })
            {
                await using var pool = new WorkerPool((e, s) => new GrpcWorkerClient(e, s, null), Hash, new WorkerOptions { Mode = mode, UseLocal = false }, localDenoiser: Describe);
                foreach (var url in workers.Urls)
                {
                    await pool.JoinAsync(url, cancellationToken).ConfigureAwait(false);
                }

                Print($"{mode} (2 workers)", await RunAsync($"{mode} (2 workers)", new SearchEngine(catalog, workers: pool), requests, inFlight, cancellationToken).ConfigureAwait(false), local);
            }

            // The same two processes as Open Inference Protocol servers: forward passes there, sampler updates here.
            await using (var kserve = new WorkerPool((e, s) => new GrpcWorkerClient(e, s, null), Hash, new WorkerOptions { Mode = WorkerModes.Stateless, UseLocal = false }))
            {
                foreach (var url in workers.Urls)
                {
                    var options = new KServeEndpointOptions { Endpoint = url, Models = { [denoiser.Description.Name] = new KServeModelOptions() } };
                    kserve.Add(await KServeBackend.ConnectAsync(options, Manifest, kserve.Options, cancellationToken: cancellationToken).ConfigureAwait(false));
                }

                var before = kserve.StatelessBackends.OfType<KServeBackend>().Sum(b => b.Traffic.Elapsed.TotalMilliseconds);
                var run = await RunAsync("kserve (2 servers)", new SearchEngine(catalog, workers: kserve), requests, inFlight, cancellationToken).ConfigureAwait(false);
                Print("kserve (2 servers)", run, local);
                var inCalls = kserve.StatelessBackends.OfType<KServeBackend>().Sum(b => b.Traffic.Elapsed.TotalMilliseconds) - before;
                kserveNote = $"kserve: a KServe v2 reply reports no server time, so its transfer ms are the link fit's α + β·bytes for each ModelInfer (fitted from ServerLive and refused probes of 64 KiB…1 MiB); the whole ModelInfer calls took {inCalls / run.Results.Count:0.0} ms per search (transfer + remote forward pass). Workers' transfer ms are measured: call time minus the time the worker reports spending.";
            }
        }

        Console.WriteLine();
        Console.WriteLine(kserveNote);
        Console.WriteLine();
        await PlacementAsync(repository, catalog, denoiser.Description.Name, Hash, Describe, cancellationToken).ConfigureAwait(false);
        return 0;

        void Print(string mode, Run run, Run local)
        {
            var bytes = run.Results.Sum(r => r.Cost.Links.Sum(l => l.Bytes));
            var nfe = run.Results.Sum(r => r.Cost.Nfe);
            var transfer = run.Results.Sum(r => r.Cost.Links.Sum(l => l.TransferTime.TotalMilliseconds));
            var same = run.Results.Zip(local.Results).All(p => SameCandidates(p.First, p.Second));
            Console.WriteLine($"| {mode} | {run.Results.Count / run.Elapsed.TotalSeconds:0.00} | {Bytes(bytes / run.Results.Count)} | {Bytes(nfe == 0 ? 0 : bytes / nfe)} | {transfer / run.Results.Count:0.0} | {run.Results.Sum(r => r.Cost.ReplayNfe)} | {(same ? "yes" : "NO")} |");
        }
    }

    /// <summary>
    /// Heterogeneous workers: one with 2 threads behind an injected 10 ms link, one with 1 thread on plain loopback, no
    /// local compute, stateless mode (so the link is paid every step). Prints which worker each batch size went to.
    /// </summary>
    private static async Task PlacementAsync(ModelRepository repository, IModelProvider catalog, string model, Func<string, string?> hash, Func<string, Denoising.DenoiserDescription?> describe, CancellationToken cancellationToken)
    {
        var latency = TimeSpan.FromMilliseconds(10);
        const double Bandwidth = 200e6;
        await using var workers = await WorkerProcesses.StartAsync(repository.RootPath, [["--Models:IntraOpThreads", "2"], ["--Models:IntraOpThreads", "1"]], cancellationToken).ConfigureAwait(false);
        var fast = workers.Urls[0];
        await using var pool = new WorkerPool(
            (e, s) => new GrpcWorkerClient(e, s, null, e == fast ? new LinkThrottle(latency, Bandwidth) : null),
            hash,
            new WorkerOptions { Mode = WorkerModes.Stateless, UseLocal = false },
            localDenoiser: describe);
        foreach (var url in workers.Urls)
        {
            await pool.JoinAsync(url, cancellationToken).ConfigureAwait(false);
        }

        Console.WriteLine($"placement: worker A = 2 threads behind an injected {latency.TotalMilliseconds:0} ms / {Bandwidth / 1e6:0} MB/s link, worker B = 1 thread on loopback; stateless, no local compute");
        Console.WriteLine();
        Console.WriteLine("| nodes advanced together | A: α, compute(rows) | B: α, compute(rows) | steps on A | steps on B |");
        Console.WriteLine("|---|---|---|---|---|");
        await using var engine = new SearchEngine(catalog, new BatchingOptions { MaxBatchSize = 64 }, workers: pool);
        foreach (var group in new[] { 1, 64 })
        {
            var result = await engine.RunAsync(new SearchRequest { Model = model, Condition = "5", Steps = 10, Eta = 0.5, Seed = 7, Strategy = new BestOfNStrategy(group) }, cancellationToken).ConfigureAwait(false);
            var calls = pool.Workers.ToDictionary(w => w.Name, w => result.Cost.Links.FirstOrDefault(l => l.Link == w.Name)?.Calls ?? 0);
            string Describe(WorkerBackend w) => $"{w.Link!.Fit.Latency.TotalMilliseconds:0.0} ms, {w.Compute.Predict(group).TotalMilliseconds:0.0} ms";
            var a = pool.Workers.Single(w => w.Name == fast);
            var b = pool.Workers.Single(w => w.Name != fast);
            Console.WriteLine($"| {group} | {Describe(a)} | {Describe(b)} | {calls[a.Name]} | {calls[b.Name]} |");
        }
    }

    /// <summary>Set by <c>--quiet</c>: no progress lines on standard error.</summary>
    private static bool s_quiet;

    private static async Task<Run> RunAsync(string phase, SearchEngine engine, IReadOnlyList<SearchRequest> requests, int inFlight, CancellationToken cancellationToken)
    {
        await using var owned = engine;
        var results = new SearchResult[requests.Count];
        var stopwatch = Stopwatch.StartNew();
        var done = 0;
        await Parallel.ForAsync(0, requests.Count, new ParallelOptions { MaxDegreeOfParallelism = inFlight, CancellationToken = cancellationToken }, async (i, ct) =>
        {
            results[i] = await engine.RunAsync(requests[i], ct).ConfigureAwait(false);
            Progress(phase, Interlocked.Increment(ref done), requests.Count, stopwatch.Elapsed);
        }).ConfigureAwait(false);
        if (!s_quiet)
        {
            Console.Error.WriteLine();
        }

        return new Run(results, stopwatch.Elapsed);
    }

    /// <summary>One progress line on standard error: the phase, searches done, time spent and an estimate of the time left.</summary>
    private static void Progress(string phase, int done, int total, TimeSpan elapsed)
    {
        if (s_quiet)
        {
            return;
        }

        var left = done == 0 ? TimeSpan.Zero : elapsed / done * (total - done);
        Console.Error.Write(string.Create(Invariant, $"\r{phase,-22} {done}/{total} searches, {elapsed.TotalSeconds:0}s spent, ~{left.TotalSeconds:0}s left   "));
    }

    private static bool SameCandidates(SearchResult a, SearchResult b) =>
        a.Candidates.Count == b.Candidates.Count
        && a.Candidates.Zip(b.Candidates).All(p => p.First.Path == p.Second.Path && p.First.Sample.Zip(p.Second.Sample).All(v => Math.Abs(v.First - v.Second) <= 1e-4));

    private static string Bytes(long bytes) => bytes switch
    {
        >= 1 << 20 => $"{bytes / 1048576.0:0.00} MiB",
        >= 1 << 10 => $"{bytes / 1024.0:0.0} KiB",
        _ => $"{bytes} B",
    };

    private sealed record Run(IReadOnlyList<SearchResult> Results, TimeSpan Elapsed);
}

/// <summary>What <c>searchorch bench links</c> probes.</summary>
internal sealed record LinksSettings
{
    /// <summary>Worker endpoints; empty starts one worker on loopback.</summary>
    public IReadOnlyList<string> Workers { get; init; } = [];

    public string? Secret { get; init; }

    /// <summary>An artificial link's round-trip latency (0 with a bandwidth of 0: none).</summary>
    public double InjectedLatencyMs { get; init; }

    public double InjectedBandwidthMBps { get; init; }

    public int Repeats { get; init; } = 5;
}

/// <summary>The workload <c>searchorch bench workers</c> runs in every mode.</summary>
internal sealed record WorkersSettings
{
    public int Searches { get; init; } = 18;

    public int Concurrency { get; init; } = 6;

    public int Steps { get; init; } = 50;

    public bool Quiet { get; init; }
}
