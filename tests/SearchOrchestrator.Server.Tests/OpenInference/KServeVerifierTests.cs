using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json;
using Grpc.Core;
using Grpc.Net.Client;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using SearchOrchestrator.Onnx.Manifests;
using SearchOrchestrator.Onnx.Repository;
using SearchOrchestrator.Onnx.Runtime;
using SearchOrchestrator.Protos.V1;
using SearchOrchestrator.Server.OpenInference;
using SearchOrchestrator.Tests;
using SearchOrchestrator.Verifiers;
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
        _app = await StartServerAsync(("py-counter", _python.Url, []));
        _channel = GrpcChannel.ForAddress(_app.Urls.First());
    }

    /// <summary>A real server on a free loopback port with the shipped repository and these kserve verifiers (name, endpoint, extra settings).</summary>
    private static async Task<WebApplication> StartServerAsync(params (string Name, string Endpoint, string[] Settings)[] verifiers)
    {
        string[] args =
        [
            "--urls", "http://127.0.0.1:0",
            "--Models:Path", RepositoryPaths.Models,
            "--Models:ExecutionProvider", "cpu",
            "--Logging:LogLevel:Default", "Warning",
            .. verifiers.SelectMany((v, i) => new[] { $"--Verifiers:Remote:{i}:Name", v.Name, $"--Verifiers:Remote:{i}:Endpoint", v.Endpoint }
                .Concat(v.Settings.Select((setting, k) => k % 2 == 0 ? $"--Verifiers:Remote:{i}:{setting}" : setting))),
        ];
        var app = SearchOrchestratorServer.Build(args, defaults: null);
        await app.StartAsync();
        return app;
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

    [Fact]
    public async Task Generate_ScoredByThePythonVerifier_CostAccountCarriesItsCallsAndExactlyTheBytesItsLinkMoved()
    {
        var verifier = _app.Services.GetRequiredService<KServeVerifiers>().All.Single();
        var (sent, received) = (verifier.Traffic.BytesSent, verifier.Traffic.BytesReceived);

        var response = await Client.GenerateAsync(Request("py-counter"));

        var cost = Assert.Single(response.Cost.Verifiers);
        Assert.Equal("py-counter", cost.Name);
        Assert.Equal(VerifierKinds.KServe, cost.Kind);
        Assert.Equal(6, cost.Calls);
        Assert.Equal(response.Cost.VerifierCalls, cost.Calls);
        Assert.Equal(verifier.Traffic.BytesSent - sent, cost.BytesSent);
        Assert.Equal(verifier.Traffic.BytesReceived - received, cost.BytesReceived);
        Assert.True(cost.BytesSent > 6 * 24 * 24 * sizeof(float), $"{cost.BytesSent} bytes sent for 6 samples of 24 x 24 floats");
    }

    [Fact]
    public async Task ListModels_WithAKServeVerifier_ListsEveryVerifierWithItsKindWhereItRunsAndTheMeasuredLink()
    {
        var response = await Client.ListModelsAsync(new ListModelsRequest());
        var single = await Client.GetModelAsync(new GetModelRequest { Name = "py-counter" });

        var remote = response.Models.Single(m => m.Name == "py-counter");
        Assert.Equal(single, remote);
        Assert.Equal((ManifestNames.Verifier, VerifierKinds.KServe, _python.Url, true), (remote.Kind, remote.VerifierKind, remote.RunsOn, remote.Ready));
        var link = Assert.Single(remote.Links);
        Assert.Equal(_python.Url, link.Endpoint);
        Assert.Equal(5, link.Samples); // ServerLive and the four probe sizes of Workers:ProbeSizes
        Assert.True(link.RoundTripMs >= 0 && link.MegabytesPerSecond >= 0, link.ToString());
        Assert.Equal((VerifierKinds.Code, VerifierKinds.Local), response.Models.Where(m => m.Name == "object-counter").Select(m => (m.VerifierKind, m.RunsOn)).Single());
        Assert.Equal((VerifierKinds.Onnx, VerifierKinds.Local), response.Models.Where(m => m.Name == "count-verifier").Select(m => (m.VerifierKind, m.RunsOn)).Single());
        Assert.Equal(string.Empty, response.Models.Single(m => m.Name == "counting").VerifierKind);
        Assert.DoesNotContain("py-counter", response.CodeVerifiers);
    }

    [Fact]
    public async Task Generate_OnnxCodeAndKServeVerifiersTogether_CombinesThemByMeanRankAndCountsEach()
    {
        var request = Request("count-verifier");
        request.Verifiers.Add("object-counter");
        request.Verifiers.Add("py-counter");

        var response = await Client.GenerateAsync(request);

        var names = request.Verifiers.ToList();
        var candidates = response.Candidates;
        Assert.Equal(6, candidates.Count);
        Assert.All(candidates, c => Assert.Equal(c.Scores["object-counter"], c.Scores["py-counter"]));
        var combined = new VerifierEnsemble(names).Combine([.. names.Select(v => candidates.Select(c => c.Scores[v]).ToArray())]);
        Assert.Equal(combined, candidates.Select(c => c.Score));
        Assert.Equal([("count-verifier", VerifierKinds.Onnx, 6L, 0L), ("object-counter", VerifierKinds.Code, 6L, 0L)], response.Cost.Verifiers.Take(2).Select(v => (v.Name, v.Kind, v.Calls, v.BytesSent + v.BytesReceived)));
        Assert.Equal(("py-counter", VerifierKinds.KServe, 6L), response.Cost.Verifiers.Skip(2).Select(v => (v.Name, v.Kind, v.Calls)).Single());
        Assert.Equal(18, response.Cost.VerifierCalls);
    }

    [Fact]
    public async Task GenerateStream_VerifierKilledMidSearchWithLeaveOut_FinishesWithTheOthersAndSaysWhichWasLeftOut()
    {
        var request = Request("object-counter", steps: 1000);
        request.Verifiers.Add("py-counter");
        request.LeaveOutFailedVerifiers = true;
        using var call = Client.GenerateStream(request);
        Assert.True(await call.ResponseStream.MoveNext());
        await _python.KillAsync();

        var events = new List<GenerateEvent>();
        while (await call.ResponseStream.MoveNext())
        {
            events.Add(call.ResponseStream.Current);
        }

        var result = events[^1].Result;
        var left = Assert.Single(result.VerifiersLeftOut);
        Assert.Equal("py-counter", left.Name);
        Assert.Contains("verifier 'py-counter' failed", left.Reason, StringComparison.Ordinal);
        Assert.Equal(6, result.Candidates.Count);
        Assert.All(result.Candidates, c => Assert.Equal(["object-counter"], c.Scores.Keys));
        Assert.Equal(result.Candidates.Select(c => (double)c.Scores["object-counter"]), result.Candidates.Select(c => c.Score));
        Assert.Equal(result.Cost.VerifierCalls, result.Cost.Verifiers.Sum(v => v.Calls));
    }

    [Fact]
    public async Task Generate_VerifierSlowerThanItsCallTimeout_FailsNamingItAndTheTimeoutOrIsLeftOut()
    {
        await using var slow = await PythonVerifier.StartAsync("--delay", "30");
        await using var app = await StartServerAsync(("py-slow", slow.Url, ["CallTimeout", "00:00:00.5", "Model", "py-counter"]));
        using var channel = GrpcChannel.ForAddress(app.Urls.First());
        var client = new SearchClient(channel);
        var leaveOut = Request("object-counter");
        leaveOut.Verifiers.Add("py-slow");
        leaveOut.LeaveOutFailedVerifiers = true;

        var failed = await Assert.ThrowsAsync<RpcException>(async () => await client.GenerateAsync(Request("py-slow")));
        var finished = await client.GenerateAsync(leaveOut);

        Assert.Equal(StatusCode.Unavailable, failed.StatusCode);
        Assert.Contains("verifier 'py-slow' failed", failed.Status.Detail, StringComparison.Ordinal);
        Assert.Contains("ModelInfer did not answer within Verifiers:Remote:<n>:CallTimeout of 'py-slow' (500 ms)", failed.Status.Detail, StringComparison.Ordinal);
        var left = Assert.Single(finished.VerifiersLeftOut);
        Assert.Equal("py-slow", left.Name);
        Assert.Contains("CallTimeout of 'py-slow' (500 ms)", left.Reason, StringComparison.Ordinal);
        Assert.Equal(6, finished.Candidates.Count);
    }

    [Fact]
    public async Task GenerateStream_VerifierTakingTheTime_ReceivesTheModelTimeOfEachNodesLastStep()
    {
        await using var echo = await PythonVerifier.StartAsync("--time-input", "t", "--echo-time");
        await using var app = await StartServerAsync(("py-time", echo.Url, ["Model", "py-counter", "Tensors:Time", "t"]));
        using var channel = GrpcChannel.ForAddress(app.Urls.First());
        var request = Request("py-time");
        request.Bfs = new Bfs { Particles = 2, EvaluateAt = { 5, 12 }, PreviewSteps = 1 }; // raw predictions: each scored with its own step's time

        using var call = new SearchClient(channel).GenerateStream(request);
        var verified = new List<TreeEvent>();
        while (await call.ResponseStream.MoveNext())
        {
            if (call.ResponseStream.Current.Progress is { } progress)
            {
                verified.AddRange(progress.Events.Where(e => e.Kind == TreeEvent.Types.Kind.Verified));
            }
        }

        using var repository = ModelRepository.Load(new ModelRepositoryOptions { Path = RepositoryPaths.Models, ExecutionProvider = "cpu" });
        var schedule = repository.GetDenoiser("counting").Description.Process.Steps(20);
        Assert.Equal([5, 12, 20], verified.Select(e => e.Step).Distinct().Order());
        Assert.All(verified, e => Assert.Equal((double)(float)schedule.TimestepAt(e.Step - 1), e.Score));
    }

    [Fact]
    public async Task ScoreAsync_TextInputConfigured_SendsEachSamplesDecodedTextAsBytes()
    {
        await using var server = await TextScoringServer.StartAsync();
        using var verifier = new KServeVerifier(TextVerifierOptions(server.Url), probe: new SearchOrchestrator.Workers.WorkerOptions { ProbeSizes = [0, 1024], ProbeRepeats = 1 });
        var batch = new VerifierBatch(new Tensors.SampleShape(4), new float[8], ["two and two", "two and two"]) { Texts = ["four", "fünf!"] };

        var scores = await verifier.ScoreAsync(batch);

        // The server scores each sample by the UTF-8 bytes of its text: "four" 4, "fünf!" 6.
        Assert.Equal([4f, 6f], scores);
        Assert.Equal(["four", "fünf!"], server.Texts);
    }

    [Fact]
    public async Task ScoreAsync_TextInputConfiguredButSamplesWithoutText_IsRefusedNamingTheSetting()
    {
        await using var server = await TextScoringServer.StartAsync();
        using var verifier = new KServeVerifier(TextVerifierOptions(server.Url), probe: new SearchOrchestrator.Workers.WorkerOptions { ProbeSizes = [0, 1024], ProbeRepeats = 1 });

        var refused = await Assert.ThrowsAsync<InvalidRequestException>(() => verifier.ScoreAsync(new VerifierBatch(new Tensors.SampleShape(4), new float[4], ["a cat"])));

        Assert.Equal("verifiers", refused.Argument);
        Assert.Contains("Verifiers:Remote:<n>:Tensors:Text of 'text-length'", refused.Message, StringComparison.Ordinal);
    }

    private static KServeVerifierOptions TextVerifierOptions(string url) => new()
    {
        Name = "text-length",
        Endpoint = url,
        Tensors = new KServeVerifierTensors { Text = "text" },
    };

    [Fact]
    public async Task HttpAndOpenAi_ScoredByThePythonVerifier_CarryItsScoresAndCost()
    {
        using var http = new HttpClient { BaseAddress = new Uri(_app.Urls.First()) };
        var grpc = await Client.GenerateAsync(Request("py-counter"));

        using var generated = await http.PostAsync("/api/v1/generate", new StringContent("""{"model":"counting","condition":"3","steps":20,"guidance":2,"eta":0.5,"seed":11,"bestOfN":{"n":6},"verifiers":["py-counter"],"candidates":6}""", Encoding.UTF8, "application/json"));
        using var images = await http.PostAsync("/v1/images/generations", new StringContent("""{"model":"counting","prompt":"3","n":2,"seed":11,"guidance_scale":2,"eta":0.5,"num_inference_steps":20,"strategy":"best_of_n","strategy_params":{"n":6},"verifiers":["py-counter"],"leave_out_failed_verifiers":true,"response_format":"b64_json"}""", Encoding.UTF8, "application/json"));
        var json = JsonDocument.Parse(await generated.Content.ReadAsStringAsync()).RootElement;
        var openAi = JsonDocument.Parse(await images.Content.ReadAsStringAsync()).RootElement;

        Assert.Equal(HttpStatusCode.OK, generated.StatusCode);
        Assert.Equal(grpc.Candidates.Select(c => (double)c.Scores["py-counter"]), json.GetProperty("candidates").EnumerateArray().Select(c => c.GetProperty("scores").GetProperty("py-counter").GetDouble()));
        var cost = Assert.Single(json.GetProperty("cost").GetProperty("verifiers").EnumerateArray());
        Assert.Equal(("py-counter", "kserve", 6L), (cost.GetProperty("name").GetString(), cost.GetProperty("kind").GetString(), cost.GetProperty("calls").GetInt64()));
        Assert.Equal(HttpStatusCode.OK, images.StatusCode);
        Assert.Equal(2, openAi.GetProperty("data").GetArrayLength());
        var openAiCost = Assert.Single(openAi.GetProperty("search").GetProperty("cost").GetProperty("verifiers").EnumerateArray());
        Assert.Equal(("py-counter", "kserve", 6L), (openAiCost.GetProperty("name").GetString(), openAiCost.GetProperty("kind").GetString(), openAiCost.GetProperty("calls").GetInt64()));
        Assert.True(openAiCost.GetProperty("bytes_sent").GetInt64() > 0);
        Assert.Equal(0, openAi.GetProperty("search").GetProperty("verifiers_left_out").GetArrayLength());
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

        public static async Task<PythonVerifier> StartAsync(params string[] options)
        {
            var start = new ProcessStartInfo("/usr/bin/python3", [Path.Combine(RepositoryPaths.Root, "samples", "PythonVerifier", "verifier.py"), "--port", "0", "--model", "py-counter", .. options])
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

    /// <summary>
    /// An Open Inference Protocol server on a loopback port whose model <c>text-length</c> takes samples FP32 [B, -1],
    /// conditions BYTES [B] and texts BYTES [B], and scores each sample by its text's UTF-8 byte count.
    /// </summary>
    private sealed class TextScoringServer : Protos.Inference.GRPCInferenceService.GRPCInferenceServiceBase, IAsyncDisposable
    {
        private WebApplication _app = null!;

        public string Url => _app.Urls.First();

        public List<string> Texts { get; } = [];

        public static async Task<TextScoringServer> StartAsync()
        {
            var server = new TextScoringServer();
            var builder = WebApplication.CreateSlimBuilder();
            builder.WebHost.UseUrls("http://127.0.0.1:0").ConfigureKestrel(k => k.ConfigureEndpointDefaults(e => e.Protocols = Microsoft.AspNetCore.Server.Kestrel.Core.HttpProtocols.Http2));
            builder.Services.AddGrpc();
            builder.Services.AddSingleton(server);
            server._app = builder.Build();
            server._app.MapGrpcService<TextScoringServer>();
            await server._app.StartAsync();
            return server;
        }

        public override Task<Protos.Inference.ServerLiveResponse> ServerLive(Protos.Inference.ServerLiveRequest request, ServerCallContext context) =>
            Task.FromResult(new Protos.Inference.ServerLiveResponse { Live = true });

        public override Task<Protos.Inference.ModelReadyResponse> ModelReady(Protos.Inference.ModelReadyRequest request, ServerCallContext context) =>
            Task.FromResult(new Protos.Inference.ModelReadyResponse { Ready = request.Name == "text-length" });

        public override Task<Protos.Inference.ModelMetadataResponse> ModelMetadata(Protos.Inference.ModelMetadataRequest request, ServerCallContext context)
        {
            var response = new Protos.Inference.ModelMetadataResponse { Name = request.Name };
            response.Inputs.Add(new Protos.Inference.ModelMetadataResponse.Types.TensorMetadata { Name = "sample", Datatype = "FP32", Shape = { -1, -1 } });
            response.Inputs.Add(new Protos.Inference.ModelMetadataResponse.Types.TensorMetadata { Name = "condition", Datatype = "BYTES", Shape = { -1 } });
            response.Inputs.Add(new Protos.Inference.ModelMetadataResponse.Types.TensorMetadata { Name = "text", Datatype = "BYTES", Shape = { -1 } });
            response.Outputs.Add(new Protos.Inference.ModelMetadataResponse.Types.TensorMetadata { Name = "score", Datatype = "FP32", Shape = { -1 } });
            return Task.FromResult(response);
        }

        public override Task<Protos.Inference.ModelInferResponse> ModelInfer(Protos.Inference.ModelInferRequest request, ServerCallContext context)
        {
            if (request.ModelName != "text-length")
            {
                throw new RpcException(new Status(StatusCode.NotFound, $"no model {request.ModelName}"));
            }

            var index = request.Inputs.Select(i => i.Name).ToList().IndexOf("text");
            var raw = request.RawInputContents[index].Span;
            var scores = new List<float>();
            while (raw.Length > 0)
            {
                var length = System.Buffers.Binary.BinaryPrimitives.ReadInt32LittleEndian(raw);
                var text = Encoding.UTF8.GetString(raw.Slice(4, length));
                lock (Texts)
                {
                    Texts.Add(text);
                }

                scores.Add(Encoding.UTF8.GetByteCount(text));
                raw = raw[(4 + length)..];
            }

            var response = new Protos.Inference.ModelInferResponse { ModelName = request.ModelName };
            response.Outputs.Add(new Protos.Inference.ModelInferResponse.Types.InferOutputTensor { Name = "score", Datatype = "FP32", Shape = { scores.Count } });
            response.RawOutputContents.Add(Google.Protobuf.ByteString.CopyFrom(System.Runtime.InteropServices.MemoryMarshal.AsBytes(scores.ToArray().AsSpan())));
            return Task.FromResult(response);
        }

        public async ValueTask DisposeAsync()
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
        }
    }
}
