using System.ClientModel;
using System.ClientModel.Primitives;
using System.Net;
using System.Text;
using System.Text.Json;
using OpenAI;
using OpenAI.Images;
using SearchOrchestrator.Server.Tests.Grpc;

namespace SearchOrchestrator.Server.Tests.OpenAi;

/// <summary>
/// The OpenAI-compatible endpoints on the server's own port, called with the official OpenAI .NET client (images,
/// models) and with HttpClient (legacy completions, which the client does not offer).
/// </summary>
public sealed class OpenAiEndpointsTests(ServerFixture server, AuthServerFixture auth)
    : IClassFixture<ServerFixture>, IClassFixture<AuthServerFixture>
{
    private const string Puzzle = "53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79";

    private static OpenAIClient Client(Uri address, string key = "no-key-needed") =>
        new(new ApiKeyCredential(key), new OpenAIClientOptions { Endpoint = new Uri(address, "/v1") });

    /// <summary>Width and height from a PNG's IHDR chunk.</summary>
    private static (int Width, int Height) PngSize(BinaryData png)
    {
        var bytes = png.ToArray();
        Assert.Equal(new byte[] { 0x89, 0x50, 0x4E, 0x47 }, bytes[..4]);
        return (System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(16)), System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(20)));
    }

    [Fact]
    public async Task GenerateImages_OfficialClient_ReturnsNPngsOfTheAskedSize()
    {
        var images = Client(server.Address).GetImageClient("counting");

        var result = await images.GenerateImagesAsync("7", 2, new ImageGenerationOptions { Size = new GeneratedImageSize(48, 48), ResponseFormat = GeneratedImageFormat.Bytes });

        Assert.Equal(2, result.Value.Count);
        Assert.All(result.Value, image => Assert.Equal((48, 48), PngSize(image.ImageBytes)));
    }

    [Fact]
    public async Task GenerateImages_WithSearchFields_RunsTheSearchAndReturnsItsCostAccount()
    {
        var images = Client(server.Address).GetImageClient("counting");
        var body = """{"model":"counting","prompt":"5","n":2,"response_format":"b64_json","seed":3,"num_inference_steps":10,"guidance_scale":2,"eta":0.5,"strategy":"shared_prefix","strategy_params":{"k":4,"fork_at":5},"verifiers":["count-verifier"]}""";

        var result = await images.GenerateImagesAsync(BinaryContent.Create(BinaryData.FromString(body)), new RequestOptions());
        var json = JsonDocument.Parse(result.GetRawResponse().Content.ToString()).RootElement;

        var search = json.GetProperty("search");
        Assert.Equal("shared_prefix", search.GetProperty("strategy").GetString());
        Assert.Equal(5, search.GetProperty("fork_step").GetInt32());
        Assert.Equal(25, search.GetProperty("cost").GetProperty("nfe").GetInt64());
        Assert.Equal(40, search.GetProperty("cost").GetProperty("nfe_independent").GetInt64());
        var data = json.GetProperty("data");
        Assert.Equal(2, data.GetArrayLength());
        Assert.All(data.EnumerateArray(), d => Assert.Equal((192, 192), PngSize(BinaryData.FromBytes(Convert.FromBase64String(d.GetProperty("b64_json").GetString()!)))));
        Assert.True(data[0].GetProperty("score").GetDouble() >= data[1].GetProperty("score").GetDouble());
    }

    [Fact]
    public async Task GetModels_OfficialClient_ListsTheReadyDenoisers()
    {
        var models = await Client(server.Address).GetOpenAIModelClient().GetModelsAsync();

        Assert.Equal(["counting", "sudoku"], models.Value.Select(m => m.Id).Order());
        Assert.All(models.Value, m => Assert.Equal("searchorchestrator", m.OwnedBy));
    }

    [Fact]
    public async Task GenerateImages_UnknownModel_Is404InOpenAisErrorShape()
    {
        var images = Client(server.Address).GetImageClient("nope");

        var ex = await Assert.ThrowsAsync<ClientResultException>(() => images.GenerateImagesAsync("7", 1, new ImageGenerationOptions { ResponseFormat = GeneratedImageFormat.Bytes }));

        Assert.Equal(404, ex.Status);
        var error = JsonDocument.Parse(ex.GetRawResponse()!.Content.ToString()).RootElement.GetProperty("error");
        Assert.Equal("invalid_request_error", error.GetProperty("type").GetString());
        Assert.Equal("model", error.GetProperty("param").GetString());
        Assert.Equal("model_not_found", error.GetProperty("code").GetString());
        Assert.Equal("no ready denoiser named 'nope'; available: counting, sudoku.", error.GetProperty("message").GetString());
    }

    [Theory]
    [InlineData("""{"model":"counting","prompt":"7","size":"100x100"}""", "size")]
    [InlineData("""{"model":"counting","prompt":"7","response_format":"url"}""", "response_format")]
    [InlineData("""{"model":"counting","prompt":"12"}""", "prompt")]
    [InlineData("""{"model":"counting","prompt":"7","eta":1.5}""", "eta")]
    [InlineData("""{"model":"counting","prompt":"7","num_inference_steps":2000}""", "num_inference_steps")]
    [InlineData("""{"model":"counting","prompt":"7","strategy":"greedy"}""", "strategy")]
    [InlineData("""{"model":"counting","prompt":"7","strategy":"bfs","strategy_params":{"particles":"many"}}""", "strategy_params")]
    [InlineData("""{"model":"counting","prompt":"7","colour":"red"}""", "colour")]
    [InlineData("""{"model":"sudoku","prompt":"7"}""", "model")]
    public async Task GenerateImages_BadField_Is400NamingIt(string body, string param)
    {
        using var http = new HttpClient { BaseAddress = server.Address };

        using var response = await http.PostAsync("/v1/images/generations", new StringContent(body, Encoding.UTF8, "application/json"));
        var error = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("error");

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("invalid_request_error", error.GetProperty("type").GetString());
        Assert.Equal(param, error.GetProperty("param").GetString());
        Assert.False(string.IsNullOrEmpty(error.GetProperty("message").GetString()));
    }

    [Fact]
    public async Task Completions_SudokuPuzzle_FillsTheGridKeepingTheGivensWithTheCostAccount()
    {
        using var http = new HttpClient { BaseAddress = server.Address };
        var body = $$"""{"model":"sudoku","prompt":"{{Puzzle}}","n":2,"seed":1,"temperature":0.7,"num_inference_steps":10,"verifiers":["sudoku-constraints"]}""";

        using var response = await http.PostAsync("/v1/completions", new StringContent(body, Encoding.UTF8, "application/json"));
        var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text_completion", json.GetProperty("object").GetString());
        var choices = json.GetProperty("choices").EnumerateArray().ToList();
        Assert.Equal(2, choices.Count);
        foreach (var text in choices.Select(c => c.GetProperty("text").GetString()!))
        {
            Assert.Equal(81, text.Length);
            Assert.All(Enumerable.Range(0, 81).Where(i => Puzzle[i] != '.'), i => Assert.Equal(Puzzle[i], text[i]));
        }

        Assert.Equal(20, json.GetProperty("search").GetProperty("cost").GetProperty("nfe").GetInt64()); // best_of_n, n = 2, 10 steps
        Assert.Equal(81 + 162, json.GetProperty("usage").GetProperty("total_tokens").GetInt32());
    }

    [Fact]
    public async Task Completions_ImageModel_Is400PointingToImages()
    {
        using var http = new HttpClient { BaseAddress = server.Address };

        using var response = await http.PostAsync("/v1/completions", new StringContent("""{"model":"counting","prompt":"7"}""", Encoding.UTF8, "application/json"));
        var error = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("error");

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("model 'counting' makes images, not text; use /v1/images/generations.", error.GetProperty("message").GetString());
    }

    [Fact]
    public async Task GenerateImages_PipelinePrompt_ReturnsRgbPngsOfThePipelinesImages()
    {
        var images = Client(server.Address).GetImageClient("shapes-t2i");

        var result = await images.GenerateImagesAsync("two red circles", 1, new ImageGenerationOptions { Size = new GeneratedImageSize(64, 64), ResponseFormat = GeneratedImageFormat.Bytes });

        var png = Assert.Single(result.Value).ImageBytes;
        Assert.Equal((64, 64), PngSize(png)); // 32 x 32 pixels, each a 2 x 2 block
        Assert.Equal(2, png.ToArray()[25]); // IHDR colour type 2: RGB
    }

    [Fact]
    public async Task GenerateImages_WithKeysConfigured_NeedsTheBearerKey()
    {
        var options = new ImageGenerationOptions { ResponseFormat = GeneratedImageFormat.Bytes };

        var refused = await Assert.ThrowsAsync<ClientResultException>(() => Client(auth.Address, "not-a-configured-key").GetImageClient("counting").GenerateImagesAsync("2", 1, options));
        var accepted = await Client(auth.Address, AuthServerFixture.Bob).GetImageClient("counting").GenerateImagesAsync("2", 1, options);

        Assert.Equal(401, refused.Status);
        Assert.Equal("authentication_error", JsonDocument.Parse(refused.GetRawResponse()!.Content.ToString()).RootElement.GetProperty("error").GetProperty("type").GetString());
        Assert.Single(accepted.Value);
    }
}
