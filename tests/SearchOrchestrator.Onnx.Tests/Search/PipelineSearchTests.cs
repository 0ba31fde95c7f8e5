using SearchOrchestrator.Onnx.Repository;
using SearchOrchestrator.Onnx.Runtime;
using SearchOrchestrator.Scheduling;
using SearchOrchestrator.Search;
using SearchOrchestrator.Strategies;
using SearchOrchestrator.Tensors;
using SearchOrchestrator.Tests;
using SearchOrchestrator.Verifiers;

namespace SearchOrchestrator.Onnx.Tests.Search;

/// <summary>The repository of the tiny diffusers-layout pipelines (two denoiser sessions each), loaded once.</summary>
public sealed class PipelineRepository : IDisposable
{
    public ModelRepository Repository { get; } = ModelRepository.Load(new ModelRepositoryOptions
    {
        Path = Path.Combine(RepositoryPaths.Root, "tests", "SearchOrchestrator.Onnx.Tests", "Fixtures", "pipelines"),
        ExecutionProvider = "cpu",
        Instances = 2,
    });

    public void Dispose() => Repository.Dispose();
}

/// <summary>
/// Searches with text prompts over the tiny random-weight pipelines: every strategy, determinism across batching, the
/// shared prompt cache, decoding once per node step for pixel verifiers, the decoder budget and the request's errors.
/// </summary>
public sealed class PipelineSearchTests(PipelineRepository pipelines, SharedRepository shipped) : IClassFixture<PipelineRepository>, IClassFixture<SharedRepository>
{
    private static readonly SampleShape Image = new(3, 16, 16);
    private static readonly SampleShape Latent = new(4, 8, 8);

    private static SearchRequest Request(ISearchStrategy strategy, string model = "tiny-sd", ulong seed = 1) => new()
    {
        Model = model,
        TextPrompt = "a cat",
        NegativePrompt = "dog",
        Steps = 6,
        Guidance = 3,
        Eta = 0.5,
        Seed = seed,
        Strategy = strategy,
        Verifiers = ["brightness"],
    };

    private ModelCatalog Catalog(params IVerifier[] verifiers) => new(pipelines.Repository, verifiers.Length > 0 ? verifiers : [new MeanVerifier("brightness")]);

    public static TheoryData<string, string> Strategies()
    {
        var data = new TheoryData<string, string>();
        foreach (var name in StrategyNames.All)
        {
            data.Add("tiny-sd", name);
        }

        data.Add("tiny-sd-fp16", StrategyNames.BestOfN);
        data.Add("tiny-sd-fp16", StrategyNames.Bfs);
        return data;
    }

    [Theory]
    [MemberData(nameof(Strategies))]
    public async Task RunAsync_EveryStrategy_ReturnsTheSameImagesAtBatchSize2AndAmongOtherSearches(string model, string strategy)
    {
        var parameters = strategy switch
        {
            StrategyNames.SharedPrefix => new Dictionary<string, string> { ["fork_at"] = "3" },
            StrategyNames.SearchOverPaths => new Dictionary<string, string> { ["backward"] = "2" },
            _ => [],
        };
        var request = Request(StrategyCatalog.BuiltIn.Create(strategy, parameters, 6), model) with { Candidates = 2 };
        SearchResult alone;
        await using (var engine = new SearchEngine(Catalog(), new BatchingOptions { MaxBatchSize = 2 }))
        {
            alone = await engine.RunAsync(request);
        }

        SearchResult together;
        await using (var engine = new SearchEngine(Catalog(), new BatchingOptions { MaxBatchSize = 64 }))
        {
            var others = Enumerable.Range(0, 5).Select(i => engine.RunAsync(request with { Seed = (ulong)(10 + i), TextPrompt = $"a {(char)('b' + i)}" }));
            var mine = engine.RunAsync(request);
            await Task.WhenAll([.. others, mine]);
            together = await mine;
        }

        Assert.NotEmpty(alone.Candidates);
        Assert.Equal(alone.Candidates.Select(c => c.Path), together.Candidates.Select(c => c.Path));
        for (var c = 0; c < alone.Candidates.Count; c++)
        {
            Assert.Equal(Image, alone.Candidates[c].Shape);
            Assert.Equal(Image.ElementCount, alone.Candidates[c].Sample.Length);
            Assert.All(alone.Candidates[c].Sample, v => Assert.True(float.IsFinite(v)));
            for (var k = 0; k < Image.ElementCount; k++)
            {
                Assert.True(Math.Abs(alone.Candidates[c].Sample[k] - together.Candidates[c].Sample[k]) <= 1e-4, $"candidate {c} pixel {k}: {alone.Candidates[c].Sample[k]} alone, {together.Candidates[c].Sample[k]} together");
            }
        }

        Assert.Equal(alone.Cost.Nfe, together.Cost.Nfe);
        Assert.Equal(alone.Cost.DecoderCalls, together.Cost.DecoderCalls);
        Assert.True(alone.Cost.DecoderCalls >= 1);
    }

    [Fact]
    public async Task RunAsync_SamePromptTwice_EncodesOnceAndCountsTheHits()
    {
        await using var engine = new SearchEngine(Catalog());
        var request = Request(new BestOfNStrategy(2));

        var first = await engine.RunAsync(request);
        var second = await engine.RunAsync(request with { Seed = 2 });
        var negative = await engine.RunAsync(request with { NegativePrompt = null });

        Assert.Equal((2L, 0L), (first.Cost.EncoderCalls, first.Cost.EncoderCacheHits)); // "a cat" and "dog"
        Assert.Equal((0L, 2L), (second.Cost.EncoderCalls, second.Cost.EncoderCacheHits));
        Assert.Equal((1L, 1L), (negative.Cost.EncoderCalls, negative.Cost.EncoderCacheHits)); // the empty prompt is new
        Assert.Equal(3, engine.PromptsFor(pipelines.Repository.GetStages("tiny-sd")!).Count);
    }

    [Fact]
    public async Task Estimate_Pipeline_CountsThePromptsToEncodeAndTheImagesToDecode()
    {
        await using var engine = new SearchEngine(Catalog());
        var request = Request(new BestOfNStrategy(3)) with { TextPrompt = "a hat", Verifiers = [], Candidates = 2 };

        var before = engine.Estimate(request);
        var run = await engine.RunAsync(request);
        var after = engine.Estimate(request);
        var verified = engine.Estimate(request with { Verifiers = ["brightness"] });
        var capped = engine.Estimate(request with { Verifiers = ["brightness"], Budget = new SearchBudget { MaxDecoderCalls = 5 } });

        Assert.Equal((2L, 2L), (before.EncoderCalls, before.DecoderCalls)); // "a hat" and "dog"; the two returned images
        Assert.Equal((run.Cost.EncoderCalls, run.Cost.DecoderCalls), (before.EncoderCalls, before.DecoderCalls));
        Assert.Equal((0L, 2L), (after.EncoderCalls, after.DecoderCalls)); // both prompts are cached now
        Assert.Equal(2 + (3 * 6), verified.DecoderCalls); // a pixel verifier may decode every node step: bounded by the NFE
        Assert.Equal(5, capped.DecoderCalls);
    }

    [Fact]
    public async Task RunAsync_NegativePrompt_ChangesTheGuidedImage()
    {
        await using var engine = new SearchEngine(Catalog());
        var request = Request(new BestOfNStrategy(1));

        var dog = (await engine.RunAsync(request)).Candidates[0].Sample;
        var empty = (await engine.RunAsync(request with { NegativePrompt = null })).Candidates[0].Sample;
        var unguided = (await engine.RunAsync(request with { Guidance = 1 })).Candidates[0].Sample;
        var unguidedOtherNegative = (await engine.RunAsync(request with { Guidance = 1, NegativePrompt = null })).Candidates[0].Sample;

        Assert.NotEqual(dog, empty);
        Assert.Equal(unguided, unguidedOtherNegative); // without guidance the negative prompt plays no part
    }

    [Fact]
    public async Task PromptCache_PastItsCapacity_EvictsOnlyUnleasedPrompts()
    {
        await using var engine = new SearchEngine(Catalog(), new BatchingOptions { PromptCacheCapacity = 2 });
        var cache = engine.PromptsFor(pipelines.Repository.GetStages("tiny-sd")!);

        using (var held = cache.Lease(["a", "b", "c"]))
        {
            Assert.Equal(3, cache.Count); // in use: never evicted, even past the capacity
            Assert.Equal((3, 0), await held.EncodeAsync());
        }

        Assert.Equal(2, cache.Count);
        foreach (var prompt in new[] { "d", "e", "f", "g" })
        {
            await engine.RunAsync(Request(new BestOfNStrategy(1)) with { TextPrompt = prompt, NegativePrompt = prompt });
        }

        Assert.Equal(2, cache.Count);
        using var again = cache.Lease(["g", "a"]);
        Assert.Equal((1, 1), await again.EncodeAsync()); // "g" is kept, "a" was evicted
    }

    [Fact]
    public async Task VerifyAsync_TwoPixelVerifiersAndALatentOne_DecodesEachNodeOncePerStep()
    {
        var a = new MeanVerifier("a");
        var b = new MeanVerifier("b");
        var latent = new MeanVerifier("latent", Latent);
        await using var engine = new SearchEngine(Catalog(a, b, latent));

        var result = await engine.RunAsync(Request(new BestOfNStrategy(3)) with { Verifiers = ["a", "b", "latent"] });

        Assert.Equal(3, result.Cost.DecoderCalls); // three leaves scored at step N; the winner is returned from the same pixels
        Assert.Equal(9, result.Cost.VerifierCalls);
        Assert.Equal([Image], a.Shapes.Distinct());
        Assert.Equal([Image], b.Shapes.Distinct());
        Assert.Equal([Latent], latent.Shapes.Distinct());
        Assert.Equal(["a cat"], a.Conditions.Distinct());
        Assert.Equal(a.Means, b.Means);
    }

    [Fact]
    public async Task RunAsync_MaxDecoderCalls_StopsDecodingForScoresButReturnsTheImage()
    {
        await using var engine = new SearchEngine(Catalog());

        var result = await engine.RunAsync(Request(new BestOfNStrategy(3)) with { Budget = new SearchBudget { MaxDecoderCalls = 2 } });

        // One decode is held back for the returned image; the other scores one leaf, and the budget refuses the rest.
        Assert.Equal(1, result.Cost.DecoderCalls);
        Assert.Equal(1, result.Cost.VerifierCalls);
        Assert.True(result.BudgetLimited);
        Assert.Equal(Image.ElementCount, Assert.Single(result.Candidates).Sample.Length);
        Assert.NotNull(result.Candidates[0].Score);
    }

    [Fact]
    public async Task RunAsync_NoVerifiers_DecodesOnlyTheReturnedCandidates()
    {
        await using var engine = new SearchEngine(Catalog());

        var result = await engine.RunAsync(Request(new BestOfNStrategy(3)) with { Verifiers = [], Candidates = 2, Budget = new SearchBudget { MaxDecoderCalls = 2 } });

        Assert.Equal(2, result.Cost.DecoderCalls);
        Assert.Equal(2, result.Candidates.Count);
        Assert.Equal(18, result.Cost.Nfe);
    }

    public static TheoryData<string, string> BadRequests() => new()
    {
        { "condition", "model 'tiny-sd' is a text-to-image pipeline: give prompt (and optionally negative_prompt), not condition '7'." },
        { "prompt", "model 'tiny-sd' is a text-to-image pipeline: prompt is required (\"\" for an unconditional image)." },
        { "long", "prompt 'a very long prompt indeed' has 21 tokens but the text encoder of model 'tiny-sd' takes at most 6; shorten it." },
        { "negative_prompt", "negative_prompt 'no no no no' has 8 tokens but the text encoder of model 'tiny-sd' takes at most 6; shorten it." },
        { "budget.max_decoder_calls", "a pipeline returns 2 decoded image(s) (candidates), so budget.max_decoder_calls must be at least 2, got 1." },
    };

    [Theory]
    [MemberData(nameof(BadRequests))]
    public async Task Validate_BadPipelineRequest_NamesTheField(string what, string message)
    {
        await using var engine = new SearchEngine(Catalog());
        var request = Request(new BestOfNStrategy(2));
        request = what switch
        {
            "condition" => request with { Condition = "7" },
            "prompt" => request with { TextPrompt = null },
            "long" => request with { TextPrompt = "a very long prompt indeed" },
            "negative_prompt" => request with { NegativePrompt = "no no no no" },
            _ => request with { Candidates = 2, Budget = new SearchBudget { MaxDecoderCalls = 1 } },
        };

        var ex = Assert.Throws<InvalidRequestException>(() => engine.Validate(request));

        Assert.Equal(what == "long" ? "prompt" : what, ex.Argument);
        Assert.Equal(message, ex.Message);
    }

    [Fact]
    public async Task Validate_PromptForAClassConditionedModel_NamesThePromptField()
    {
        await using var engine = new SearchEngine(shipped.Repository);

        var ex = Assert.Throws<InvalidRequestException>(() => engine.Validate(new SearchRequest { Model = "counting", TextPrompt = "four", Strategy = new BestOfNStrategy(1) }));

        Assert.Equal("prompt", ex.Argument);
        Assert.Equal("model 'counting' takes a condition, not a prompt; prompt is for text-to-image pipelines and text models (a diffusion LLM with a tokenizer.json).", ex.Message);
    }

    /// <summary>Scores the mean of each sample; records the shapes, conditions and means it saw.</summary>
    private sealed class MeanVerifier(string name, SampleShape? shape = null) : IVerifier
    {
        private readonly object _gate = new();

        public string Name { get; } = name;

        public SampleShape? SampleShape { get; } = shape;

        public List<SampleShape> Shapes { get; } = [];

        public List<string> Conditions { get; } = [];

        public List<float> Means { get; } = [];

        public Task<float[]> ScoreAsync(VerifierBatch batch, CancellationToken cancellationToken = default)
        {
            var scores = Enumerable.Range(0, batch.Count).Select(i => System.Numerics.Tensors.TensorPrimitives.Sum(batch.Sample(i)) / batch.Shape.ElementCount).ToArray();
            lock (_gate)
            {
                Shapes.Add(batch.Shape);
                Conditions.AddRange(batch.Conditions);
                Means.AddRange(scores);
            }

            return Task.FromResult(scores);
        }
    }
}
