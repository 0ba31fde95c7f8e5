using Grpc.Core;
using SearchOrchestrator.Processes;
using SearchOrchestrator.Protos.V1;
using SearchOrchestrator.Tests;
using MaskedSampler = SearchOrchestrator.Protos.V1.MaskedSampler;
using SearchClient = SearchOrchestrator.Protos.V1.Search.SearchClient;

namespace SearchOrchestrator.Server.Tests.Grpc;

/// <summary>The search service with the tiny diffusion LLMs (a Hugging Face export folder each), over real gRPC on a loopback socket.</summary>
public sealed class TextModelSearchServiceTests(TextModelSearchServiceTests.TextModelServer server) : IClassFixture<TextModelSearchServiceTests.TextModelServer>
{
    private SearchClient Client => new(server.Channel);

    private static GenerateRequest Request() => new()
    {
        Model = "tiny-llada",
        Prompt = "the cat sat",
        Steps = 8,
        Seed = 5,
        MaskedSampler = new MaskedSampler { Temperature = 0.7 },
        SharedPrefix = new SharedPrefix { K = 3, ForkAt = 4 },
        Candidates = 3,
    };

    [Fact]
    public async Task ListModels_TinyLlada_ShowsAMaskedTextModelWithItsMaskIdAndVocabularySize()
    {
        var model = await Client.GetModelAsync(new GetModelRequest { Name = "tiny-llada" });

        Assert.True(model.Ready, model.Error);
        Assert.Equal(("denoiser", "masked", "logits"), (model.Kind, model.Process, model.Prediction));
        Assert.Equal([24], model.SampleShape);
        Assert.Equal((302, 301), (model.VocabularySize, model.MaskId));
        Assert.Empty(model.Vocabulary);
    }

    [Fact]
    public async Task Generate_Prompt_ReturnsDecodedAnswersKeepingThePromptAndIsDeterministic()
    {
        var first = await Client.GenerateAsync(Request());
        var second = await Client.GenerateAsync(Request());

        Assert.Equal(4 + (3 * 4), first.Cost.Nfe); // the shared prefix once, then three branches
        Assert.Equal(3, first.Candidates.Count);
        Assert.Equal(first.Candidates.Select(c => c.Text), second.Candidates.Select(c => c.Text));
        foreach (var candidate in first.Candidates)
        {
            Assert.Equal(24, candidate.Tokens.Count);
            Assert.Equal([299, 277, 268], candidate.Tokens.Take(3)); // "the cat sat", clamped
            Assert.All(candidate.Tokens.Skip(11), t => Assert.Equal(300, t)); // padding after the 8-token answer
            Assert.DoesNotContain(301, candidate.Tokens);
            Assert.NotEmpty(candidate.Text);
        }
    }

    [Fact]
    public async Task Generate_PromptAndCondition_IsInvalidArgumentNamingPrompt()
    {
        var request = Request();
        request.Condition = "7";

        var error = await Assert.ThrowsAsync<RpcException>(() => Client.GenerateAsync(request).ResponseAsync);

        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
        Assert.Contains("prompt", error.Status.Detail);
    }

    /// <summary>A server whose repository is the text-model fixtures.</summary>
    public sealed class TextModelServer : ServerFixture
    {
        protected override string[] ExtraArguments =>
            ["--Models:Path", Path.Combine(RepositoryPaths.Root, "tests", "SearchOrchestrator.Onnx.Tests", "Fixtures", "text")];
    }
}
