using Grpc.Net.Client;
using SearchOrchestrator.Onnx.Repository;
using SearchOrchestrator.Onnx.Runtime;
using SearchOrchestrator.Search;
using SearchOrchestrator.Server.Workers;
using SearchOrchestrator.Strategies;
using SearchOrchestrator.Tests;
using SearchOrchestrator.Verifiers;
using SearchOrchestrator.Workers;

namespace SearchOrchestrator.Cli.Tests.Workers;

/// <summary>
/// A text-to-image pipeline split over real <c>searchorch worker</c> processes (the tiny-sd fixture): one worker serves
/// only its decoder, another only its denoiser (Worker:PipelineStages). A search whose decoder or denoiser runs on a
/// worker returns the images an all-local search returns, with each stage's link traffic in the cost account.
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
        var reference = await new SearchEngine(_models).RunAsync(Request());
        await using var pool = Pool(new WorkerOptions { Mode = mode, UseLocal = false });
        await pool.JoinAsync(_denoiser.Url);
        await using var engine = new SearchEngine(_models, workers: pool);

        var result = await engine.RunAsync(Request());

        AssertSameImages(reference, result);
        Assert.Equal(reference.Cost.Nfe, result.Cost.Nfe);
        Assert.Equal(reference.Cost.DecoderCalls, result.Cost.DecoderCalls);
        Assert.Equal(0, result.Cost.ReplayNfe);
        var link = Assert.Single(result.Cost.Links);
        Assert.Equal((_denoiser.Url, StageNames.Denoiser), (link.Link, link.Stage));
        Assert.True(link.BytesSent > 0 && link.BytesReceived > 0 && link.Calls > 0);
    }

    [Fact]
    public async Task RunAsync_DecoderOnAWorkerDenoiserHere_ReturnsTheAllLocalImagesWithTheDecoderTraffic()
    {
        var reference = await new SearchEngine(_models).RunAsync(Request());
        await using var pool = Pool(new WorkerOptions { DecoderPlacement = DecoderPlacements.Workers });
        await pool.JoinAsync(_decoder.Url);
        await using var engine = new SearchEngine(_models, workers: pool);

        var result = await engine.RunAsync(Request());

        AssertSameImages(reference, result);
        Assert.Equal(reference.Cost.Nfe, result.Cost.Nfe);
        Assert.Equal(reference.Cost.DecoderCalls, result.Cost.DecoderCalls);
        var link = Assert.Single(result.Cost.Links);
        Assert.Equal((_decoder.Url, StageNames.Decoder), (link.Link, link.Stage));
        // One entry per decoded latent (its share of a batched Decode call): each latent went there and its image came back.
        Assert.Equal(result.Cost.DecoderCalls, link.Calls);
        Assert.True(link.BytesSent >= result.Cost.DecoderCalls * 4 * 8 * 8 * sizeof(float), $"{link.BytesSent} B sent");
        Assert.True(link.BytesReceived >= result.Cost.DecoderCalls * 3 * 16 * 16 * sizeof(float), $"{link.BytesReceived} B received");
    }

    [Fact]
    public async Task RunAsync_DenoiserAndDecoderOnTwoWorkers_ReturnsTheAllLocalImagesWithBothStagesTraffic()
    {
        var reference = await new SearchEngine(_models).RunAsync(Request());
        await using var pool = Pool(new WorkerOptions { UseLocal = false, DecoderPlacement = DecoderPlacements.Workers });
        await pool.JoinAsync(_decoder.Url);
        await pool.JoinAsync(_denoiser.Url);
        await using var engine = new SearchEngine(_models, workers: pool);

        var result = await engine.RunAsync(Request());

        AssertSameImages(reference, result);
        Assert.Equal(
            [(_decoder.Url, StageNames.Decoder), (_denoiser.Url, StageNames.Denoiser)],
            result.Cost.Links.Select(l => (l.Link, l.Stage)).OrderBy(l => l.Stage, StringComparer.Ordinal));
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

    private static WorkerPool Pool(WorkerOptions options) =>
        new((endpoint, session) => new GrpcWorkerClient(endpoint, session, secret: null), _ => null, options with { ProbeSizes = [0, 65536], ProbeRepeats = 1 });

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
