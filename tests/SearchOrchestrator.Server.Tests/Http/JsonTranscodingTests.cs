using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using SearchOrchestrator.Protos.V1;
using SearchOrchestrator.Server.Tests.Grpc;
using SearchClient = SearchOrchestrator.Protos.V1.Search.SearchClient;

namespace SearchOrchestrator.Server.Tests.Http;

/// <summary>
/// The search service over HTTP/JSON (gRPC JSON transcoding) on the gRPC server's own port: every RPC, the same
/// results as gRPC, errors as HTTP status plus the gRPC status and message, API keys and caps.
/// </summary>
public sealed class JsonTranscodingTests(ServerFixture server, AuthServerFixture auth, LimitedServerFixture limited)
    : IClassFixture<ServerFixture>, IClassFixture<AuthServerFixture>, IClassFixture<LimitedServerFixture>
{
    private const string SharedPrefixJson = """{"model":"counting","condition":"5","steps":10,"guidance":2,"eta":0.5,"seed":"3","sharedPrefix":{"k":4,"forkAt":5},"verifiers":["count-verifier"],"candidates":2}""";

    private static StringContent Json(string json) => new(json, Encoding.UTF8, "application/json");

    private static async Task<JsonElement> ReadJson(HttpResponseMessage response) =>
        JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;

    [Fact]
    public async Task Generate_PostJson_ReturnsWhatGrpcReturnsForTheSameRequest()
    {
        using var http = new HttpClient { BaseAddress = server.Address };
        var grpc = await new SearchClient(server.Channel).GenerateAsync(Google.Protobuf.JsonParser.Default.Parse<GenerateRequest>(SharedPrefixJson));

        using var response = await http.PostAsync("/api/v1/generate", Json(SharedPrefixJson));
        var overHttp = Google.Protobuf.JsonParser.Default.Parse<GenerateResponse>(await response.Content.ReadAsStringAsync());

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(new Version(1, 1), response.Version);
        Assert.Equal(25, overHttp.Cost.Nfe);
        Assert.Equal(40, overHttp.Cost.NfeIndependent);
        Assert.Equal(grpc.Candidates.Select(c => (c.Path, c.Score)), overHttp.Candidates.Select(c => (c.Path, c.Score)));
    }

    [Fact]
    public async Task Generate_OverHttp2Cleartext_IsServedAsHttp2()
    {
        using var http = new HttpClient { BaseAddress = server.Address, DefaultRequestVersion = HttpVersion.Version20, DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact };

        using var response = await http.PostAsync("/api/v1/estimate", Json(SharedPrefixJson));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(HttpVersion.Version20, response.Version);
    }

    [Fact]
    public async Task GenerateStream_PostJson_StreamsProgressEventsThenTheResult()
    {
        using var http = new HttpClient { BaseAddress = server.Address };
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/generate/stream") { Content = Json(SharedPrefixJson.Replace("\"steps\":10", "\"steps\":50", StringComparison.Ordinal).Replace("\"forkAt\":5", "\"forkAt\":25", StringComparison.Ordinal)) };

        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        var events = new List<GenerateEvent>();
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        while (await reader.ReadLineAsync() is { } line)
        {
            if (line.Length > 0)
            {
                events.Add(Google.Protobuf.JsonParser.Default.Parse<GenerateEvent>(line));
            }
        }

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(GenerateEvent.EventOneofCase.Result, events[^1].EventCase);
        Assert.All(events[..^1], e => Assert.Equal(GenerateEvent.EventOneofCase.Progress, e.EventCase));
        var treeEvents = events[..^1].SelectMany(e => e.Progress.Events).ToList();
        Assert.Equal(4, treeEvents.Count(e => e.Kind == TreeEvent.Types.Kind.Forked && e.Step == 25)); // fork(trunk, 4) at step 25
        Assert.Equal(125, events[^1].Result.Cost.Nfe);
    }

    [Fact]
    public async Task ListModels_Get_ListsModelsAndCodeVerifiers()
    {
        using var http = new HttpClient { BaseAddress = server.Address };

        var body = await ReadJson(await http.GetAsync("/api/v1/models"));

        var models = body.GetProperty("models").EnumerateArray().ToList();
        var names = models.Where(m => !m.TryGetProperty("verifierKind", out var kind) || kind.GetString() == "onnx").Select(m => m.GetProperty("name").GetString()).ToList();
        Assert.Equal(["count-verifier", "count-verifier-t", "counting", "shapes-t2i", "shapes-t2i-verifier", "sudoku"], names.Order());
        Assert.Equal("code", models.Single(m => m.GetProperty("name").GetString() == "object-counter").GetProperty("verifierKind").GetString());
        Assert.Contains("object-counter", body.GetProperty("codeVerifiers").EnumerateArray().Select(v => v.GetString()));
    }

    [Fact]
    public async Task GetModel_ByName_ReturnsItAndUnknownIs404WithTheGrpcStatus()
    {
        using var http = new HttpClient { BaseAddress = server.Address };

        var counting = await ReadJson(await http.GetAsync("/api/v1/models/counting"));
        using var missing = await http.GetAsync("/api/v1/models/nope");
        var error = await ReadJson(missing);

        Assert.Equal("gaussian", counting.GetProperty("process").GetString());
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        Assert.Equal(5, error.GetProperty("code").GetInt32()); // NOT_FOUND
        Assert.StartsWith("no model named 'nope'; available: ", error.GetProperty("message").GetString());
    }

    [Fact]
    public async Task Estimate_PostJson_ReturnsTheExactPlan()
    {
        using var http = new HttpClient { BaseAddress = server.Address };

        var estimate = await ReadJson(await http.PostAsync("/api/v1/estimate", Json(SharedPrefixJson)));

        Assert.Equal(25, estimate.GetProperty("nfe").GetInt64());
        Assert.Equal(40, estimate.GetProperty("nfeIndependent").GetInt64());
        Assert.True(estimate.GetProperty("exact").GetBoolean());
    }

    [Fact]
    public async Task Generate_BadValue_Is400WithTheGrpcStatusAndMessageNamingTheField()
    {
        using var http = new HttpClient { BaseAddress = server.Address };

        using var response = await http.PostAsync("/api/v1/generate", Json("""{"model":"counting","condition":"5","eta":2}"""));
        var error = await ReadJson(response);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal(3, error.GetProperty("code").GetInt32()); // INVALID_ARGUMENT
        Assert.StartsWith("eta: ", error.GetProperty("message").GetString());
    }

    [Fact]
    public async Task Generate_MalformedJson_Is400()
    {
        using var http = new HttpClient { BaseAddress = server.Address };

        using var response = await http.PostAsync("/api/v1/generate", Json("""{"model":"counting","steps":"many"}"""));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
    }

    [Fact]
    public async Task Generate_OverTheNfeCap_Is429ResourceExhausted()
    {
        using var http = new HttpClient { BaseAddress = limited.Address };

        using var response = await http.PostAsync("/api/v1/generate", Json("""{"model":"counting","condition":"5","steps":40,"bestOfN":{"n":30}}"""));
        var error = await ReadJson(response);

        Assert.Equal(HttpStatusCode.TooManyRequests, response.StatusCode);
        Assert.Equal(8, error.GetProperty("code").GetInt32()); // RESOURCE_EXHAUSTED
        Assert.Contains("Serving:MaxNfePerRequest", error.GetProperty("message").GetString());
    }

    [Fact]
    public async Task Generate_WithoutOrWithAnApiKey_Is401OrSucceeds()
    {
        using var http = new HttpClient { BaseAddress = auth.Address };
        const string Small = """{"model":"counting","condition":"2","steps":4}""";

        using var refused = await http.PostAsync("/api/v1/generate", Json(Small));
        using var keyed = new HttpRequestMessage(HttpMethod.Post, "/api/v1/generate") { Content = Json(Small) };
        keyed.Headers.Add("x-api-key", AuthServerFixture.Bob);
        using var accepted = await http.SendAsync(keyed);

        Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        Assert.Equal(16, (await ReadJson(refused)).GetProperty("code").GetInt32()); // UNAUTHENTICATED
        Assert.Equal(HttpStatusCode.OK, accepted.StatusCode);
        Assert.Equal(4, (await ReadJson(accepted)).GetProperty("cost").GetProperty("nfe").GetInt64());
    }

    [Fact]
    public async Task OpenApiDocument_ListsEveryRoute()
    {
        using var http = new HttpClient { BaseAddress = server.Address };

        var document = await ReadJson(await http.GetAsync("/openapi/v1.json"));

        var paths = document.GetProperty("paths");
        Assert.True(paths.GetProperty("/api/v1/generate").TryGetProperty("post", out _));
        Assert.True(paths.GetProperty("/api/v1/generate/stream").TryGetProperty("post", out _));
        Assert.True(paths.GetProperty("/api/v1/models").TryGetProperty("get", out _));
        Assert.True(paths.GetProperty("/api/v1/models/{name}").TryGetProperty("get", out _));
        Assert.True(paths.GetProperty("/api/v1/estimate").TryGetProperty("post", out _));
    }
}
