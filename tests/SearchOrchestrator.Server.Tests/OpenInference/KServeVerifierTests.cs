using System.Diagnostics;
using Grpc.Core;
using Grpc.Net.Client;
using Microsoft.AspNetCore.Builder;
using SearchOrchestrator.Protos.V1;
using SearchOrchestrator.Tests;
using SearchClient = SearchOrchestrator.Protos.V1.Search.SearchClient;

namespace SearchOrchestrator.Server.Tests.OpenInference;

/// <summary>
/// samples/PythonVerifier/verifier.py as a real process (Debian's python3-grpcio, python3-numpy, python3-grpc-tools),
/// joined to a real server as the <c>kserve</c> verifier <c>py-counter</c>.
/// </summary>
public sealed class KServeVerifierTests : IAsyncLifetime
{
    private PythonVerifier _python = null!;
    private WebApplication _app = null!;
    private GrpcChannel _channel = null!;

    private SearchClient Client => new(_channel);

    public async Task InitializeAsync()
    {
        _python = await PythonVerifier.StartAsync();
        _app = SearchOrchestratorServer.Build(
        [
            "--urls", "http://127.0.0.1:0",
            "--Models:Path", RepositoryPaths.Models,
            "--Models:ExecutionProvider", "cpu",
            "--Logging:LogLevel:Default", "Warning",
            "--Verifiers:Remote:0:Name", "py-counter",
            "--Verifiers:Remote:0:Endpoint", _python.Url,
        ],
        defaults: null);
        await _app.StartAsync();
        _channel = GrpcChannel.ForAddress(_app.Urls.First());
    }

    public async Task DisposeAsync()
    {
        _channel.Dispose();
        await _app.StopAsync();
        await _app.DisposeAsync();
        await _python.DisposeAsync();
    }

    private static GenerateRequest Request(string verifier, int steps = 20) => new()
    {
        Model = "counting",
        Condition = "3",
        Steps = steps,
        Guidance = 2,
        Eta = 0.5,
        Seed = 11,
        BestOfN = new BestOfN { N = 6 },
        Verifiers = { verifier },
        Candidates = 6,
        IncludeTensors = true,
    };

    [Fact]
    public async Task Generate_ScoredByThePythonVerifier_SameCandidatesAndScoresAsObjectCounter()
    {
        var remote = await Client.GenerateAsync(Request("py-counter"));
        var local = await Client.GenerateAsync(Request("object-counter"));

        Assert.Equal(6, remote.Candidates.Count);
        Assert.Equal(local.Candidates.Select(c => c.Tensor), remote.Candidates.Select(c => c.Tensor));
        Assert.Equal(local.Candidates.Select(c => c.Scores["object-counter"]), remote.Candidates.Select(c => c.Scores["py-counter"]));
        Assert.Equal(local.Cost.VerifierCalls, remote.Cost.VerifierCalls);
        Assert.Equal(local.Cost.Nfe, remote.Cost.Nfe);
    }

    [Fact]
    public async Task GenerateStream_VerifierKilledMidSearch_FailsNamingItAndTheServerKeepsServing()
    {
        // 6 trajectories of 1000 steps are verified only at the end, long after the first progress event.
        using var call = Client.GenerateStream(Request("py-counter", steps: 1000));
        Assert.True(await call.ResponseStream.MoveNext());
        Assert.Equal(GenerateEvent.EventOneofCase.Progress, call.ResponseStream.Current.EventCase);
        await _python.KillAsync();

        var failed = await Assert.ThrowsAsync<RpcException>(async () => { while (await call.ResponseStream.MoveNext()) { } });
        var unrelated = await Client.GenerateAsync(Request("object-counter"));

        Assert.True(failed.StatusCode == StatusCode.Unavailable, failed.Status.ToString());
        Assert.Contains("verifier 'py-counter'", failed.Status.Detail, StringComparison.Ordinal);
        Assert.Equal(6, unrelated.Candidates.Count);
    }

    /// <summary>The sample verifier on a free loopback port; disposing kills it.</summary>
    private sealed class PythonVerifier : IAsyncDisposable
    {
        private readonly Process _process;

        private PythonVerifier(Process process, string url)
        {
            _process = process;
            Url = url;
        }

        public string Url { get; }

        public static async Task<PythonVerifier> StartAsync()
        {
            var start = new ProcessStartInfo("/usr/bin/python3", [Path.Combine(RepositoryPaths.Root, "samples", "PythonVerifier", "verifier.py"), "--port", "0", "--model", "py-counter"])
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            };
            var process = Process.Start(start)!;
            var line = await process.StandardOutput.ReadLineAsync();
            if (line is null || !line.StartsWith("listening on ", StringComparison.Ordinal))
            {
                var error = await process.StandardError.ReadToEndAsync();
                throw new InvalidOperationException($"verifier.py did not start (apt-get install python3-grpcio python3-numpy python3-grpc-tools): {line} {error}");
            }

            return new PythonVerifier(process, $"http://{line["listening on ".Length..].Trim()}");
        }

        public async Task KillAsync()
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }

        public async ValueTask DisposeAsync()
        {
            await KillAsync();
            _process.Dispose();
        }
    }
}
