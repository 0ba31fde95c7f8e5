using Grpc.Net.Client;
using SearchOrchestrator.Onnx.Repository;
using SearchOrchestrator.Onnx.Runtime;
using SearchOrchestrator.Search;
using SearchOrchestrator.Server.OpenInference;
using SearchOrchestrator.Server.Workers;
using SearchOrchestrator.Strategies;
using SearchOrchestrator.Tests;
using SearchOrchestrator.Verifiers;
using SearchOrchestrator.Workers;

namespace SearchOrchestrator.Cli.Tests.Workers;

/// <summary>
/// A text-to-image pipeline split over real <c>searchorch worker</c> processes (the tiny-sd fixture): one worker serves
/// only its decoder, another only its denoiser (Worker:PipelineStages). A search whose decoder or denoiser runs on a
/// worker returns the images an all-local search returns, with each stage's link traffic in the cost account; so does
/// one whose decoder runs on an Open Inference Protocol server (the decoder worker's own, serving tiny-sd/vae_decoder).
/// </summary>
public sealed class PipelineStageProcessTests : IAsyncLifetime
{
    private static readonly string Pipelines = Path.Combine(RepositoryPaths.Root, "tests", "SearchOrchestrator.Onnx.Tests", "Fixtures", "pipelines");

    private ModelRepository _repository = null!;
    private ModelCatalog _models = null!;
    private WorkerProcess _decoder = null!;
    private WorkerProcess _denoiser = null!;

    public async Task InitializeAsync()
    {
        var workers = Task.WhenAll(
            WorkerProcess.StartWithModelsAsync(Pipelines, "--Worker:PipelineStages", "decoder"),
            WorkerProcess.StartWithModelsAsync(Pipelines, "--Worker:PipelineStages", "denoiser"));
        _repository = ModelRepository.Load(new ModelRepositoryOptions { Path = Pipelines, ExecutionProvider = "cpu", IntraOpThreads = 1 });
        _models = new ModelCatalog(_repository, [new MeanVerifier()]);
        (_decoder, _denoiser) = (await workers) switch { var w => (w[0], w[1]) };
    }

    public async Task DisposeAsync()
    {
        await _decoder.DisposeAsync();
        await _denoiser.DisposeAsync();
        _repository.Dispose();
    }

    [Theory]
    [InlineData(WorkerModes.Stateless)]
    [InlineData(WorkerModes.Resident)]
    public async Task RunAsync_DenoiserOnAWorkerDecoderHere_ReturnsTheAllLocalImages(string mode)
    {
        var result = await RunBesideAnAllLocalSearchAsync(new WorkerOptions { Mode = mode, UseLocal = false }, pool => pool.JoinAsync(_denoiser.Url));

        Assert.Equal(0, result.Cost.ReplayNfe);
        var link = Assert.Single(result.Cost.Links);
        Assert.Equal((_denoiser.Url, StageNames.Denoiser), (link.Link, link.Stage));
        Assert.True(link.BytesSent > 0 && link.BytesReceived > 0 && link.Calls > 0);
    }

    [Theory]
    [InlineData(WorkerModes.Stateless)]
    [InlineData(WorkerModes.Resident)]
    public async Task RunAsync_DenoiserOnAWorker_CountsTheWorkersOwnEncoderCallsAndCacheHits(string mode)
    {
        await using var pool = Pool(new WorkerOptions { Mode = mode, UseLocal = false });
        await pool.JoinAsync(_denoiser.Url);
        await using var engine = new SearchEngine(_models, workers: pool);

        var first = await engine.RunAsync(Request());
        var second = await engine.RunAsync(Request());

        // The prompt and the negative prompt, encoded here (the tree's own cache) and on the worker, each once.
        Assert.Equal(4L, first.Cost.EncoderCalls);
        Assert.Equal(0L, second.Cost.EncoderCalls);
        if (mode == WorkerModes.Resident)
        {
            // One group of nodes put on the worker: its two prompts found in the worker's cache (and here) the second time.
            Assert.Equal((0L, 4L), (first.Cost.EncoderCacheHits, second.Cost.EncoderCacheHits));
        }
        else
        {
            // Every stateless Step call looks both prompts up in the worker's cache (two hits a call, the first call's two
            // encoder calls aside); how many calls a search makes depends on how its steps were batched.
            Assert.True(first.Cost.EncoderCacheHits % 2 == 0 && second.Cost.EncoderCacheHits % 2 == 0 && second.Cost.EncoderCacheHits >= 4, $"{first.Cost.EncoderCacheHits} then {second.Cost.EncoderCacheHits} hits");
        }
    }

    [Fact]
    public async Task RunAsync_DecoderOnAWorkerDenoiserHere_ReturnsTheAllLocalImagesWithTheDecoderTraffic()
    {
        var result = await RunBesideAnAllLocalSearchAsync(new WorkerOptions { DecoderPlacement = DecoderPlacements.Workers }, pool => pool.JoinAsync(_decoder.Url));

        AssertOnlyTheDecoderTraffic(result);
    }

    [Fact]
    public async Task RunAsync_DenoiserAndDecoderOnTwoWorkers_ReturnsTheAllLocalImagesWithBothStagesTraffic()
    {
        var result = await RunBesideAnAllLocalSearchAsync(
            new WorkerOptions { UseLocal = false, DecoderPlacement = DecoderPlacements.Workers },
            async pool =>
            {
                await pool.JoinAsync(_decoder.Url);
                await pool.JoinAsync(_denoiser.Url);
            });

        Assert.Equal(
            [(_decoder.Url, StageNames.Decoder), (_denoiser.Url, StageNames.Denoiser)],
            result.Cost.Links.Select(l => (l.Link, l.Stage)).OrderBy(l => l.Stage, StringComparer.Ordinal));
    }

    [Fact]
    public async Task RunAsync_ResidentOnAWorkerServingBothStages_DecodesWhereTheLatentsAreSendingOnlyHandles()
    {
        await using var both = await WorkerProcess.StartWithModelsAsync(Pipelines);

        var result = await RunBesideAnAllLocalSearchAsync(
            new WorkerOptions { Mode = WorkerModes.Resident, UseLocal = false, DecoderPlacement = DecoderPlacements.Workers }, pool => pool.JoinAsync(both.Url));

        var decoder = result.Cost.Links.Single(l => l.Stage == StageNames.Decoder);
        Assert.Equal(both.Url, decoder.Link);
        // Each Decode call sends the model (9 B), the session (35 B), and its handles packed (3 B + 1 B a handle below
        // 128): no latent travels. Each image comes back as 3,075 B (768 floats with its tag and length) plus the
        // shape (5 B) and the worker's time (2 to 11 B) per call.
        var (calls, images) = (decoder.Calls, result.Cost.DecoderCalls);
        Assert.Equal(47 * calls + images, decoder.BytesSent);
        Assert.InRange(decoder.BytesReceived, (3075 * images) + (5 * calls), (3075 * images) + (16 * calls));
    }

    [Fact]
    public async Task RunAsync_DecoderOnAKServeServerDenoiserHere_ReturnsTheAllLocalImagesWithTheDecoderTraffic()
    {
        // The decoder worker's own Open Inference Protocol service serves tiny-sd/vae_decoder as diffusers exports it.
        var result = await RunBesideAnAllLocalSearchAsync(
            new WorkerOptions { DecoderPlacement = DecoderPlacements.Workers },
            async pool => Assert.True(pool.Add(await KServeBackend.ConnectAsync(KServeDecoderEndpoint(_decoder.Url), _ => null, pool.Options, localDecoder: Decoder))));

        AssertOnlyTheDecoderTraffic(result);
    }

    [Fact]
    public async Task ConnectAsync_KServeDecoderOfAPipelineNotHere_IsRefusedNamingThePipeline()
    {
        var refused = await Assert.ThrowsAsync<WorkerRefusedException>(() => KServeBackend.ConnectAsync(KServeDecoderEndpoint(_decoder.Url), _ => null, new WorkerOptions(), localDecoder: _ => null));

        Assert.Contains("no ready text-to-image pipeline 'tiny-sd'", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ConnectAsync_KServeDecoderWhoseImageDiffers_IsRefusedNamingTheTensor()
    {
        var ours = Decoder("tiny-sd")!;
        var larger = ours with { ImageShape = new Tensors.SampleShape(3, 32, 32) };

        var refused = await Assert.ThrowsAsync<WorkerRefusedException>(() => KServeBackend.ConnectAsync(KServeDecoderEndpoint(_decoder.Url), _ => null, new WorkerOptions(), localDecoder: _ => larger));

        Assert.Contains("output 'sample': shape [-1, 3, 16, 16], expected [-1, 3, 32, 32]", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Serve_WithAKServeDecoder_ListsItAsTheDecoderStagesBackendAndDecodesThere()
    {
        var app = Server.SearchOrchestratorServer.Build(["--urls", "http://127.0.0.1:0", "--models", Pipelines, "--Models:ExecutionProvider", "cpu",
            "--Workers:DecoderPlacement", "workers", "--Logging:LogLevel:Default", "Warning",
            "--Backends:KServe:0:Endpoint", _decoder.Url, "--Backends:KServe:0:Models:tiny-sd/vae_decoder:RemoteName", "tiny-sd/vae_decoder"]);
        await app.StartAsync();
        try
        {
            var pool = (WorkerPool)app.Services.GetService(typeof(WorkerPool))!;
            // The hosted service joins the configured server in the background once the host has started.
            using var joining = new CancellationTokenSource(TimeSpan.FromMinutes(1));
            while (pool.StatelessBackends.Count == 0)
            {
                await Task.Delay(10, joining.Token);
            }

            using var channel = GrpcChannel.ForAddress(app.Urls.First());
            var search = new Protos.V1.Search.SearchClient(channel);

            var models = await search.ListModelsAsync(new Protos.V1.ListModelsRequest());
            var response = await search.GenerateAsync(new Protos.V1.GenerateRequest { Model = "tiny-sd", Prompt = "a cat", Steps = 4, BestOfN = new Protos.V1.BestOfN { N = 2 }, Candidates = 2 });

            var stages = models.Models.Single(m => m.Name == "tiny-sd").Stages;
            Assert.Equal(["local"], stages.Single(s => s.Name == "unet").Backends);
            Assert.Equal([_decoder.Url], stages.Single(s => s.Name == "vae_decoder").Backends);
            var link = Assert.Single(response.Cost.Links);
            Assert.Equal((_decoder.Url, "decoder", 2L), (link.Link, link.Stage, link.Calls));
        }
        finally
        {
            await app.StopAsync();
            await app.DisposeAsync();
        }
    }

    [Fact]
    public async Task Decode_OnAWorkerServingOnlyTheDenoiser_IsRefusedNamingTheSetting()
    {
        await using var client = new GrpcWorkerClient(_denoiser.Url, "s", secret: null);

        var refused = await Assert.ThrowsAsync<WorkerUnavailableException>(() => client.DecodeAsync("tiny-sd", [new float[4 * 8 * 8]]));

        Assert.Contains("InvalidArgument", refused.Message, StringComparison.Ordinal);
        Assert.Contains("Worker:PipelineStages", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Serve_WithADecoderWorker_ListsWhereEachStageRunsAndReportsTheDecoderLink()
    {
        var app = Server.SearchOrchestratorServer.Build(["--urls", "http://127.0.0.1:0", "--models", Pipelines, "--Models:ExecutionProvider", "cpu",
            "--Workers:DecoderPlacement", "workers", "--Logging:LogLevel:Default", "Warning"]);
        await app.StartAsync();
        try
        {
            await ((WorkerPool)app.Services.GetService(typeof(WorkerPool))!).JoinAsync(_decoder.Url);
            using var channel = GrpcChannel.ForAddress(app.Urls.First());
            var search = new Protos.V1.Search.SearchClient(channel);

            var models = await search.ListModelsAsync(new Protos.V1.ListModelsRequest());
            var response = await search.GenerateAsync(new Protos.V1.GenerateRequest { Model = "tiny-sd", Prompt = "a cat", Steps = 4, BestOfN = new Protos.V1.BestOfN { N = 2 }, Candidates = 2 });

            var stages = models.Models.Single(m => m.Name == "tiny-sd").Stages;
            Assert.Equal(["local"], stages.Single(s => s.Name == "text_encoder").Backends);
            Assert.Equal(["local"], stages.Single(s => s.Name == "unet").Backends);
            Assert.Equal([_decoder.Url], stages.Single(s => s.Name == "vae_decoder").Backends);
            Assert.Equal(2, response.Candidates.Count);
            var link = Assert.Single(response.Cost.Links);
            Assert.Equal((_decoder.Url, "decoder", 2L), (link.Link, link.Stage, link.Calls));
        }
        finally
        {
            await app.StopAsync();
            await app.DisposeAsync();
        }
    }

    /// <summary>
    /// Runs <see cref="Request"/> all here, then through a pool of <paramref name="options"/> that <paramref name="join"/>
    /// fills; checks both return the same images for the same NFE and decoder calls, and returns the placed search's result.
    /// </summary>
    private async Task<SearchResult> RunBesideAnAllLocalSearchAsync(WorkerOptions options, Func<WorkerPool, Task> join)
    {
        var reference = await new SearchEngine(_models).RunAsync(Request());
        await using var pool = Pool(options);
        await join(pool);
        await using var engine = new SearchEngine(_models, workers: pool);

        var result = await engine.RunAsync(Request());

        AssertSameImages(reference, result);
        Assert.Equal(reference.Cost.Nfe, result.Cost.Nfe);
        Assert.Equal(reference.Cost.DecoderCalls, result.Cost.DecoderCalls);
        return result;
    }

    /// <summary>One link, the decoder worker's decoder stage, with an entry per decoded latent (its share of a batched call): each latent went there and its image came back.</summary>
    private void AssertOnlyTheDecoderTraffic(SearchResult result)
    {
        var link = Assert.Single(result.Cost.Links);
        Assert.Equal((_decoder.Url, StageNames.Decoder), (link.Link, link.Stage));
        Assert.Equal(result.Cost.DecoderCalls, link.Calls);
        Assert.True(link.BytesSent >= result.Cost.DecoderCalls * 4 * 8 * 8 * sizeof(float), $"{link.BytesSent} B sent");
        Assert.True(link.BytesReceived >= result.Cost.DecoderCalls * 3 * 16 * 16 * sizeof(float), $"{link.BytesReceived} B received");
    }

    private static WorkerPool Pool(WorkerOptions options) =>
        new((endpoint, session) => new GrpcWorkerClient(endpoint, session, secret: null), _ => null, options with { ProbeSizes = [0, 65536], ProbeRepeats = 1 });

    private Denoising.DecoderDescription? Decoder(string pipeline) => _repository.GetStages(pipeline)?.Decoder.Description;

    private static KServeEndpointOptions KServeDecoderEndpoint(string url) => new()
    {
        Endpoint = url,
        Models = { ["tiny-sd/vae_decoder"] = new KServeModelOptions() },
    };

    private static SearchRequest Request() => new()
    {
        Model = "tiny-sd",
        TextPrompt = "a cat",
        NegativePrompt = "dog",
        Steps = 6,
        Guidance = 3,
        Eta = 0.5,
        Seed = 5,
        Strategy = StrategyCatalog.BuiltIn.Create(StrategyNames.SharedPrefix, new Dictionary<string, string> { ["k"] = "4", ["fork_at"] = "3" }, 6),
        Verifiers = ["brightness"],
        Candidates = 2,
    };

    /// <summary>Same candidates in the same order with the same images, bit for bit.</summary>
    private static void AssertSameImages(SearchResult expected, SearchResult actual)
    {
        Assert.Equal(2, expected.Candidates.Count);
        Assert.Equal(expected.Candidates.Select(c => c.Path), actual.Candidates.Select(c => c.Path));
        Assert.Equal(expected.Candidates.Select(c => c.Shape), actual.Candidates.Select(c => c.Shape));
        for (var i = 0; i < expected.Candidates.Count; i++)
        {
            Assert.Equal(expected.Candidates[i].Sample, actual.Candidates[i].Sample);
        }
    }

    /// <summary>Scores a decoded image by its mean pixel.</summary>
    private sealed class MeanVerifier : IVerifier
    {
        public string Name => "brightness";

        public Task<float[]> ScoreAsync(VerifierBatch batch, CancellationToken cancellationToken = default) =>
            Task.FromResult(Enumerable.Range(0, batch.Count).Select(i => System.Numerics.Tensors.TensorPrimitives.Sum(batch.Sample(i)) / batch.Shape.ElementCount).ToArray());
    }
}
