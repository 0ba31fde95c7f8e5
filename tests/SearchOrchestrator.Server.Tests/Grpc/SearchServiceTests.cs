using Grpc.Core;
using Grpc.Health.V1;
using Grpc.Reflection.V1Alpha;
using SearchOrchestrator.Processes;
using SearchOrchestrator.Protos.V1;
using MaskedSampler = SearchOrchestrator.Protos.V1.MaskedSampler;
using SearchClient = SearchOrchestrator.Protos.V1.Search.SearchClient;

namespace SearchOrchestrator.Server.Tests.Grpc;

/// <summary>The search service over real gRPC on a loopback socket.</summary>
public sealed class SearchServiceTests(ServerFixture server) : IClassFixture<ServerFixture>
{
    private SearchClient Client => new(server.Channel);

    private static GenerateRequest SharedPrefix(int steps = 10) => new()
    {
        Model = "counting",
        Condition = "5",
        Steps = steps,
        Guidance = 2,
        Eta = 0.5,
        Seed = 3,
        SharedPrefix = new SharedPrefix { K = 4, ForkAt = 5 },
        Verifiers = { "count-verifier", "object-counter" },
        Candidates = 2,
        IncludeTensors = true,
        IncludePng = true,
    };

    [Fact]
    public async Task Generate_SharedPrefix_ReturnsCandidatesAndTheExactCostAccount()
    {
        var response = await Client.GenerateAsync(SharedPrefix());

        Assert.Equal("shared_prefix", response.Strategy);
        Assert.Equal(25, response.Cost.Nfe);
        Assert.Equal(40, response.Cost.NfeIndependent);
        Assert.Equal(0.375, response.Cost.Saving, 9);
        Assert.Equal(8, response.Cost.VerifierCalls);
        Assert.Equal(5, response.ForkStep);
        Assert.Equal(2, response.Candidates.Count);
        var best = response.Candidates[0];
        Assert.True(best.Complete);
        Assert.Equal([1, 24, 24], best.Shape);
        Assert.Equal(24 * 24 * 4, best.Tensor.Length);
        Assert.Equal(new byte[] { 0x89, 0x50, 0x4E, 0x47 }, best.Png.Span[..4].ToArray());
        Assert.Equal(["count-verifier", "object-counter"], best.Scores.Keys.Order());
        // The size planned before the search (and checked against Serving:MaxSendMessageSize) bounds the real one.
        var counting = new Denoising.DenoiserDescription
        {
            Name = "counting",
            SampleShape = new Tensors.SampleShape(1, 24, 24),
            Process = new Processes.GaussianProcess(Processes.NoiseSchedule.Linear(1000, 1e-4, 0.02), Processes.PredictionType.Epsilon),
            Conditions = new Denoising.ConditionVocabulary([new("1", 1)], nullId: 0),
        };
        Assert.InRange(response.CalculateSize(), 1, SearchOrchestrator.Server.Grpc.ResponseSize.Planned(SharedPrefix(), 2, 10, counting));
    }

    [Fact]
    public async Task Generate_TheReadmesGrpcurlBody_ParsesAsGrpcurlWouldAndSucceeds()
    {
        // grpcurl turns its -d JSON into the message with protobuf's JSON mapping; so does JsonParser.
        var line = File.ReadLines(Path.Combine(SearchOrchestrator.Tests.RepositoryPaths.Root, "README.md")).First(l => l.StartsWith("grpcurl -plaintext -d '", StringComparison.Ordinal));
        var json = line.Split('\'')[1];

        var request = Google.Protobuf.JsonParser.Default.Parse<GenerateRequest>(json);
        var response = await Client.GenerateAsync(request);

        Assert.Equal(GenerateRequest.StrategyOneofCase.SharedPrefix, request.StrategyCase);
        Assert.Equal(25, request.SharedPrefix.ForkAt);
        Assert.Equal(25 + (4 * 25), response.Cost.Nfe);
        Assert.Equal("count-verifier", Assert.Single(response.Candidates[0].Scores.Keys));
    }

    [Fact]
    public async Task Generate_SameRequestTwice_ReturnsTheSameSamples()
    {
        var first = await Client.GenerateAsync(SharedPrefix());
        var second = await Client.GenerateAsync(SharedPrefix());

        Assert.Equal(first.Candidates[0].Tensor, second.Candidates[0].Tensor);
    }

    [Fact]
    public async Task GenerateStream_Search_SendsProgressThenTheResultLast()
    {
        using var call = Client.GenerateStream(SharedPrefix(steps: 50));
        var events = new List<GenerateEvent>();
        await foreach (var e in call.ResponseStream.ReadAllAsync())
        {
            events.Add(e);
        }

        Assert.Equal(GenerateEvent.EventOneofCase.Result, events[^1].EventCase);
        Assert.All(events[..^1], e => Assert.Equal(GenerateEvent.EventOneofCase.Progress, e.EventCase));
        Assert.Equal(5 + (4 * 45), events[^1].Result.Cost.Nfe);
        var progress = events[..^1].Select(e => e.Progress.Nfe).ToList();
        Assert.Equal(progress.Order(), progress);
        // The tree events tell the story: the root reaches step 5, forks four ways, each finishes and is verified.
        var tree = events[..^1].SelectMany(e => e.Progress.Events).ToList();
        Assert.Equal(0, events[..^1].Sum(e => e.Progress.EventsDropped));
        Assert.Contains(tree, t => t.Kind == SearchOrchestrator.Protos.V1.TreeEvent.Types.Kind.Advanced && t.Node == 0 && t.Step == 5);
        Assert.Equal(4, tree.Count(t => t.Kind == SearchOrchestrator.Protos.V1.TreeEvent.Types.Kind.Forked && t.Parent == 0));
        Assert.Equal(4, tree.Count(t => t.Kind == SearchOrchestrator.Protos.V1.TreeEvent.Types.Kind.Advanced && t.Step == 50));
        Assert.Equal(4, tree.Count(t => t.Kind == SearchOrchestrator.Protos.V1.TreeEvent.Types.Kind.Verified && t.HasScore));
    }

    [Fact]
    public async Task GenerateStream_HundredStreamsCancelledTogether_StopAndAnUnrelatedRequestCompletes()
    {
        // Each stream is a search far longer than the test (bfs, 16 particles, 50 steps: 800 NFE each, 80,000 in all).
        var cancels = Enumerable.Range(0, 100).Select(_ => new CancellationTokenSource()).ToList();
        var calls = cancels.Select((cancel, i) =>
        {
            var request = SharedPrefix(steps: 50);
            request.Bfs = new Bfs { Particles = 16 };
            request.Seed = (ulong)i;
            return Client.GenerateStream(request, cancellationToken: cancel.Token);
        }).ToList();
        foreach (var call in calls)
        {
            Assert.True(await call.ResponseStream.MoveNext()); // its search is under way
            Assert.Equal(GenerateEvent.EventOneofCase.Progress, call.ResponseStream.Current.EventCase);
        }

        cancels.ForEach(c => c.Cancel());
        var ended = await Task.WhenAll(calls.Select(async call =>
            (await Assert.ThrowsAsync<RpcException>(async () => { while (await call.ResponseStream.MoveNext()) { } })).StatusCode));
        var unrelated = await Client.GenerateAsync(SharedPrefix());

        Assert.All(ended, code => Assert.Equal(StatusCode.Cancelled, code));
        Assert.Equal(25, unrelated.Cost.Nfe);
        Assert.Equal(2, unrelated.Candidates.Count);
        calls.ForEach(c => c.Dispose());
        cancels.ForEach(c => c.Dispose());
    }

    [Fact]
    public async Task ListModels_ShippedRepository_ListsModelsAndCodeVerifiers()
    {
        var response = await Client.ListModelsAsync(new ListModelsRequest());

        var counting = response.Models.Single(m => m.Name == "counting");
        Assert.True(counting.Ready);
        Assert.Equal("denoiser", counting.Kind);
        Assert.Equal([1, 24, 24], counting.SampleShape);
        Assert.Equal(["1", "2", "3", "4", "5", "6", "7", "8", "9"], counting.Conditions);
        Assert.Equal("cpu", counting.ExecutionProvider); // no GPU here: auto fell back
        Assert.Contains("object-counter", response.CodeVerifiers);
        Assert.Equal("class-probability", (await Client.GetModelAsync(new GetModelRequest { Name = "count-verifier" })).ScoringRule);
    }

    [Fact]
    public async Task Metrics_AfterASearch_AreScrapedInPrometheusFormatOverHttp11OnTheServicePort()
    {
        await Client.GenerateAsync(SharedPrefix());
        using var http = new HttpClient();

        using var response = await http.GetAsync(new Uri(server.Address, "/metrics"));
        var text = await response.Content.ReadAsStringAsync();

        Assert.Equal(new Version(1, 1), response.Version);

        Assert.Contains("searchorch_searches_total{", text);
        Assert.Contains("searchorch_requests_total{", text);
        Assert.Contains("status=\"OK\"", text);
        Assert.Contains("strategy=\"shared_prefix\"", text);
        Assert.Contains("searchorch_nfe_total", text);
        Assert.Contains("searchorch_nfe_saved_total", text);
        Assert.Contains("searchorch_batch_rows_bucket", text);
        Assert.Contains("searchorch_queue_duration_seconds_bucket", text);
        // Buckets in seconds that resolve sub-millisecond waits and passes, not 0, 5, 10 … seconds.
        Assert.Matches("searchorch_queue_duration_seconds_bucket\\{[^}]*le=\"0.0005\"", text);
        Assert.Matches("searchorch_batch_duration_seconds_bucket\\{[^}]*le=\"0.001\"", text);
    }

    [Fact]
    public async Task Health_AfterStart_IsServing()
    {
        var response = await new Health.HealthClient(server.Channel).CheckAsync(new HealthCheckRequest());

        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, response.Status);
    }

    [Fact]
    public async Task Reflection_ListsTheSearchService()
    {
        using var call = new ServerReflection.ServerReflectionClient(server.Channel).ServerReflectionInfo();
        await call.RequestStream.WriteAsync(new ServerReflectionRequest { ListServices = string.Empty });
        await call.RequestStream.CompleteAsync();
        Assert.True(await call.ResponseStream.MoveNext());

        Assert.Contains("searchorchestrator.v1.Search", call.ResponseStream.Current.ListServicesResponse.Service.Select(s => s.Name));
    }

    [Theory]
    [InlineData("model", StatusCode.NotFound, "no denoiser named 'nope'")]
    [InlineData("verifier", StatusCode.NotFound, "no verifier named 'nope'")]
    [InlineData("k", StatusCode.InvalidArgument, "strategy.k: shared_prefix: k must be at least 1, got -1.")]
    [InlineData("fork_at", StatusCode.InvalidArgument, "strategy.fork_at: shared_prefix: fork_at must be between 0 and 9, got 12.")]
    [InlineData("renoise", StatusCode.InvalidArgument, "strategy.renoise: shared_prefix: renoise must be at least 0, got -2.")]
    [InlineData("resampling", StatusCode.InvalidArgument, "strategy.resampling: fk_steering: resampling must be multinomial or systematic")]
    [InlineData("eta", StatusCode.InvalidArgument, "eta: eta must be between 0 (deterministic DDIM) and 1 (ancestral), got 1.5.")]
    [InlineData("guidance", StatusCode.InvalidArgument, "guidance: guidance must be a finite number >= 0 (1 = no guidance), got NaN.")]
    [InlineData("steps", StatusCode.InvalidArgument, "steps: steps must be at most 1000 on this server (Serving:MaxSteps), got 5000.")]
    [InlineData("condition", StatusCode.InvalidArgument, "condition: condition '12' is not in the vocabulary of model 'counting'")]
    [InlineData("budget", StatusCode.InvalidArgument, "budget: budget limits must not be negative")]
    [InlineData("empty verifier", StatusCode.InvalidArgument, "verifiers: verifiers[2] is empty; name a verifier")]
    [InlineData("ensemble", StatusCode.InvalidArgument, "ensemble: ensemble 7 is not an EnsembleRule; expected ENSEMBLE_RULE_MEAN_RANK (0) or ENSEMBLE_RULE_WEIGHTED_SUM (1).")]
    [InlineData("masked_sampler", StatusCode.InvalidArgument, "masked_sampler: the gaussian process samples with 'ddim', not 'masked'.")]
    public async Task Generate_BadField_FailsWithTheRightStatusNamingIt(string field, StatusCode code, string message)
    {
        var request = SharedPrefix();
        switch (field)
        {
            case "model": request.Model = "nope"; break;
            case "verifier": request.Verifiers.Add("nope"); break;
            case "k": request.SharedPrefix.K = -1; break;
            case "fork_at": request.SharedPrefix.ForkAt = 12; break;
            case "renoise": request.SharedPrefix.Renoise = -2; break;
            case "resampling": request.FkSteering = new FkSteering { Resampling = "stratified" }; break;
            case "eta": request.Eta = 1.5; break;
            case "guidance": request.Guidance = double.NaN; break;
            case "steps": request.Steps = 5000; break;
            case "condition": request.Condition = "12"; break;
            case "empty verifier": request.Verifiers.Add(string.Empty); break;
            case "ensemble": request.Ensemble = (EnsembleRule)7; break;
            case "masked_sampler": request.MaskedSampler = new MaskedSampler { Temperature = 0.5 }; break;
            default: request.Budget = new Budget { MaxNfe = -5 }; break;
        }

        var ex = await Assert.ThrowsAsync<RpcException>(() => Client.GenerateAsync(request).ResponseAsync);

        Assert.Equal(code, ex.StatusCode);
        Assert.Contains(message, ex.Status.Detail);
        Assert.Equal(2, (await Client.GenerateAsync(SharedPrefix())).Candidates.Count);
    }

    [Fact]
    public async Task Generate_HundredThousandCharacterCondition_QuotesAShortPrefixAndItsLength()
    {
        var request = SharedPrefix();
        request.Condition = new string('7', 100_000);

        var ex = await Assert.ThrowsAsync<RpcException>(() => Client.GenerateAsync(request).ResponseAsync);

        Assert.Equal(StatusCode.InvalidArgument, ex.StatusCode);
        Assert.StartsWith($"condition: condition '{new string('7', CallerInput.MaxCharacters)}…' (100000 characters) is not in the vocabulary of model 'counting'", ex.Status.Detail);
        Assert.True(ex.Status.Detail.Length < 300, ex.Status.Detail);
        Assert.Equal(2, (await Client.GenerateAsync(SharedPrefix())).Candidates.Count);
    }

    [Fact]
    public async Task Generate_TwentyThousandEntryEvaluateAt_QuotesTheFirstEntriesAndTheirCount()
    {
        var request = SharedPrefix();
        request.Bfs = new Bfs { Particles = 2, EvaluateAt = { Enumerable.Range(1, 20_000) } };

        var ex = await Assert.ThrowsAsync<RpcException>(() => Client.GenerateAsync(request).ResponseAsync);

        Assert.Equal(StatusCode.InvalidArgument, ex.StatusCode);
        Assert.Equal($"strategy.evaluate_at: bfs: evaluate_at must be strictly increasing steps between 1 and 9, got [{string.Join(", ", Enumerable.Range(1, CallerInput.MaxEntries))}, …] (20000 entries).", ex.Status.Detail);
        Assert.Equal(2, (await Client.GenerateAsync(SharedPrefix())).Candidates.Count);
    }

    [Fact]
    public async Task Generate_MoreCandidatesThanTheSearchFinishes_ReturnsTheOnesItHas()
    {
        var request = SharedPrefix();
        request.SharedPrefix = null;
        request.BestOfN = new BestOfN { N = 3 };
        request.Candidates = 10;

        var response = await Client.GenerateAsync(request);

        Assert.Equal(3, response.Candidates.Count);
    }

    [Fact]
    public async Task GetModel_EmptyName_IsInvalidArgumentNamingTheField()
    {
        var ex = await Assert.ThrowsAsync<RpcException>(() => Client.GetModelAsync(new GetModelRequest()).ResponseAsync);

        Assert.Equal(StatusCode.InvalidArgument, ex.StatusCode);
        Assert.Equal("name: the model name is empty; name one of the models ListModels lists.", ex.Status.Detail);
    }

    [Fact]
    public async Task Generate_TruncatedMessage_IsInvalidArgumentCannotParseAndTheServerKeepsServing()
    {
        // model = "counting", then best_of_n (field 10, a oneof member) claiming 5 bytes and carrying 2.
        byte[] body = [0x0A, 0x08, .. "counting"u8, 0x52, 0x05, 0x08, 0x02];
        var raw = new Method<byte[], byte[]>(MethodType.Unary, "searchorchestrator.v1.Search", "Generate", Marshallers.Create(b => b, b => b), Marshallers.Create(b => b, b => b));

        var ex = await Assert.ThrowsAsync<RpcException>(() => server.Channel.CreateCallInvoker().AsyncUnaryCall(raw, null, new CallOptions(), body).ResponseAsync);

        Assert.Equal(StatusCode.InvalidArgument, ex.StatusCode);
        Assert.StartsWith("cannot parse the request: ", ex.Status.Detail, StringComparison.Ordinal);
        Assert.EndsWith("Send a searchorchestrator.v1.GenerateRequest encoded as the proto declares it.", ex.Status.Detail, StringComparison.Ordinal);
        Assert.Equal(2, (await Client.GenerateAsync(SharedPrefix())).Candidates.Count);
    }

    [Fact]
    public async Task Generate_DeadlineTooShort_FailsWithDeadlineExceededAndTheServerKeepsServing()
    {
        var request = SharedPrefix(steps: 50);
        request.SharedPrefix.K = 64;

        var ex = await Assert.ThrowsAsync<RpcException>(() => Client.GenerateAsync(request, deadline: DateTime.UtcNow.AddMilliseconds(200)).ResponseAsync);

        Assert.Equal(StatusCode.DeadlineExceeded, ex.StatusCode);
        Assert.Equal(2, (await Client.GenerateAsync(SharedPrefix())).Candidates.Count);
    }

    [Fact]
    public async Task Generate_SixtyFourConcurrentSearches_AllSucceed()
    {
        var calls = Enumerable.Range(0, 64).Select(i =>
        {
            var request = SharedPrefix();
            request.Seed = (ulong)i;
            request.Condition = ((i % 9) + 1).ToString();
            return Client.GenerateAsync(request).ResponseAsync;
        });

        var responses = await Task.WhenAll(calls);

        Assert.All(responses, r => Assert.Equal(25, r.Cost.Nfe));
        Assert.True(responses.Average(r => r.Cost.MeanBatchSize) > 8, "concurrent searches should share batches");
    }
}
