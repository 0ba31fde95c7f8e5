using Grpc.Core;
using SearchOrchestrator.Protos.V1;
using SearchClient = SearchOrchestrator.Protos.V1.Search.SearchClient;

namespace SearchOrchestrator.Server.Tests.Grpc;

/// <summary>Text-to-image searches over real gRPC on a loopback socket, on the shipped shapes-t2i pipeline.</summary>
public sealed class PipelineSearchServiceTests(ServerFixture server) : IClassFixture<ServerFixture>
{
    private SearchClient Client => new(server.Channel);

    private static GenerateRequest Prompted(string prompt, ulong seed = 1) => new()
    {
        Model = "shapes-t2i",
        Prompt = prompt,
        NegativePrompt = "blue squares",
        Steps = 4,
        Guidance = 3,
        Eta = 0.5,
        Seed = seed,
        BestOfN = new BestOfN { N = 3 },
        Verifiers = { "composition-judge" },
        Candidates = 2,
        IncludeTensors = true,
        IncludePng = true,
    };

    [Fact]
    public async Task Generate_Prompt_ReturnsRgbImagesPngsAndTheStageCalls()
    {
        var first = await Client.GenerateAsync(Prompted("two green triangles"));
        var again = await Client.GenerateAsync(Prompted("two green triangles", seed: 2));

        Assert.Equal(12, first.Cost.Nfe);
        Assert.Equal(3, first.Cost.VerifierCalls);
        Assert.Equal(3, first.Cost.DecoderCalls); // each leaf decoded once, the returned ones from the same pixels
        Assert.Equal((2L, 0L), (first.Cost.EncoderCalls, first.Cost.EncoderCacheHits));
        Assert.Equal((0L, 2L), (again.Cost.EncoderCalls, again.Cost.EncoderCacheHits));
        Assert.Equal(2, first.Candidates.Count);
        var best = first.Candidates[0];
        Assert.Equal([3, 32, 32], best.Shape);
        Assert.Equal(3 * 32 * 32 * 4, best.Tensor.Length);
        Assert.Equal(new byte[] { 0x89, 0x50, 0x4E, 0x47 }, best.Png.Span[..4].ToArray());
        Assert.Equal(2, best.Png.Span[25]); // IHDR colour type 2: RGB
        Assert.InRange(best.Score, -20, 0); // the judge scores −distance to the caption
    }

    [Fact]
    public async Task GenerateStream_Prompt_ReportsEncoderAndDecoderCalls()
    {
        using var call = Client.GenerateStream(Prompted("one red circle"));
        Progress? last = null;
        GenerateResponse? result = null;
        await foreach (var e in call.ResponseStream.ReadAllAsync())
        {
            if (e.Progress is { } progress)
            {
                last = progress;
            }
            else
            {
                result = e.Result;
            }
        }

        Assert.NotNull(result);
        Assert.NotNull(last);
        Assert.Equal(result.Cost.EncoderCalls, last.EncoderCalls);
        Assert.Equal(result.Cost.DecoderCalls, last.DecoderCalls);
    }

    public static TheoryData<string, string> BadRequests() => new()
    {
        { "prompt for a class model", "model 'counting' takes a condition, not a prompt; prompt and negative_prompt are for text-to-image pipelines." },
        { "condition for a pipeline", "model 'shapes-t2i' is a text-to-image pipeline: give prompt (and optionally negative_prompt), not condition '7'." },
        { "long prompt", "prompt 'one two three four five six seven eight nine ten eleven twelve t…' (88 characters) has 34 tokens but the text encoder of model 'shapes-t2i' takes at most 14; shorten it." },
        { "decoder budget", "a pipeline returns 2 decoded image(s) (candidates), so budget.max_decoder_calls must be at least 2, got 1." },
    };

    [Theory]
    [MemberData(nameof(BadRequests))]
    public async Task Generate_BadPromptFields_AreInvalidArgumentNamingTheField(string what, string message)
    {
        var request = Prompted("one red circle");
        switch (what)
        {
            case "prompt for a class model":
                request.Model = "counting";
                break;
            case "condition for a pipeline":
                request.Condition = "7";
                break;
            case "long prompt":
                request.Prompt = "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen";
                break;
            default:
                request.Budget = new Budget { MaxDecoderCalls = 1 };
                break;
        }

        var ex = await Assert.ThrowsAsync<RpcException>(() => Client.GenerateAsync(request).ResponseAsync);

        Assert.Equal(StatusCode.InvalidArgument, ex.StatusCode);
        Assert.Contains(message, ex.Status.Detail);
    }

    [Fact]
    public async Task ListModels_Pipeline_ShowsItsStagesBackendsAndDtypes()
    {
        var models = await Client.ListModelsAsync(new ListModelsRequest());

        var pipeline = models.Models.Single(m => m.Name == "shapes-t2i");
        Assert.Equal("pipeline", pipeline.Kind);
        Assert.Equal(["text_encoder", "unet", "vae_decoder"], pipeline.Stages.Select(s => s.Name));
        Assert.All(pipeline.Stages, s => Assert.Equal(["local"], s.Backends));
        Assert.All(pipeline.Stages, s => Assert.Equal("float32", s.Dtype));
        Assert.StartsWith("input_ids:", Assert.Single(pipeline.Stages[0].Inputs));
        Assert.Equal(["sample", "timestep", "encoder_hidden_states"], pipeline.Stages[1].Inputs.Select(i => i.Split(':')[0]));
    }
}
