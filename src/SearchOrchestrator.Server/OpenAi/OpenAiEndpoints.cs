using System.Text.Json;
using System.Text.Json.Nodes;
using Google.Protobuf;
using Grpc.Core;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using SearchOrchestrator.Imaging;
using SearchOrchestrator.Onnx.Manifests;
using SearchOrchestrator.Onnx.Repository;
using SearchOrchestrator.Protos.V1;
using SearchOrchestrator.Server.Grpc;

namespace SearchOrchestrator.Server.OpenAi;

/// <summary>
/// OpenAI-compatible HTTP endpoints: <c>GET /v1/models</c>, <c>POST /v1/images/generations</c> (gaussian image
/// models; a class-conditioned model takes its condition label as the prompt) and <c>POST /v1/completions</c>
/// (masked text models: prompt in, the filled-in text out). The search rides along as extra body fields, as SGLang
/// and vLLM-Omni extend the schema (<c>strategy</c>, <c>strategy_params</c>, <c>verifiers</c>, <c>leave_out_failed_verifiers</c>, <c>budget</c>,
/// <c>num_inference_steps</c>, <c>guidance_scale</c>, <c>eta</c>), and the response carries the cost account in
/// <c>search</c> (with the verifiers left out). A thin adapter: each request becomes a <see cref="GenerateRequest"/> run by
/// <see cref="SearchService.GenerateAsync"/>, so validation, caps, API keys and errors are the gRPC service's; errors
/// are answered in OpenAI's error shape.
/// </summary>
public static class OpenAiEndpointRouteBuilderExtensions
{
    /// <summary>Maps the OpenAI-compatible endpoints (needs the services of <c>searchorch serve</c>).</summary>
    public static IEndpointRouteBuilder MapOpenAiCompatible(this IEndpointRouteBuilder endpoints)
    {
        var v1 = endpoints.MapGroup("/v1").ExcludeFromDescription();
        v1.MapGet("/models", ListModels);
        v1.MapPost("/images/generations", GenerateImages);
        v1.MapPost("/completions", Complete);
        return endpoints;
    }

    private static IResult ListModels(HttpContext http, ModelRepository repository, ApiKeyInterceptor keys)
    {
        try
        {
            keys.Admit(ApiKey(http.Request), countsAsSearch: false);
        }
        catch (RpcException ex)
        {
            return OpenAiError.From(ex.Status).ToResult();
        }

        var data = repository.Models.Where(m => m.IsReady && m.Kind == ManifestNames.Denoiser).Select(m => new
        {
            id = m.Name,
            @object = "model",
            created = 0,
            owned_by = "searchorchestrator",
            endpoint = m.Manifest?.Process == "masked" ? "/v1/completions" : "/v1/images/generations",
        });
        return Results.Json(new { @object = "list", data });
    }

    private static Task<IResult> GenerateImages(HttpContext http, SearchService search, ModelRepository repository, ApiKeyInterceptor keys, TimeProvider time) =>
        Answer(http, keys, async (body, cancellationToken) =>
        {
            var request = OpenAiRequest.Read(body, OpenAiRequest.ImageFields, "n");
            var model = repository.Models.FirstOrDefault(m => m.Name == request.Model && m.IsReady && m.Kind == ManifestNames.Pipeline) ?? Denoiser(repository, request.Model);
            if (model.Manifest?.Process == "masked")
            {
                throw OpenAiError.Invalid("model", $"model '{request.Model}' is a masked text model; use /v1/completions.");
            }

            // A pipeline's images are its decoder's (RGB); a manifest denoiser's are its samples (single-channel).
            int[] shape = model.Kind == ManifestNames.Pipeline
                ? [1, .. repository.GetPipeline(request.Model).Decoder.Description.ImageShape.Dimensions]
                : model.Manifest?.Inputs?.GetValueOrDefault("sample")?.Shape ?? [];
            if (shape is not [_, (1 or 3) and var channels, var height, var width])
            {
                throw OpenAiError.Invalid("model", $"model '{request.Model}' does not make single-channel or RGB images.");
            }

            var scale = ImageScale(body, height, width);
            if (body.TryGetPropertyValue("response_format", out var format) && format?.GetValue<string>() is { } f && f != "b64_json")
            {
                throw OpenAiError.Invalid("response_format", $"only b64_json is served (this server keeps no image URLs), got '{f}'.");
            }

            var generate = request.ToGenerateRequest(body);
            if (model.Kind == ManifestNames.Pipeline)
            {
                (generate.Prompt, generate.Condition) = (generate.Condition, string.Empty);
            }

            generate.IncludeTensors = true;
            var response = await search.GenerateAsync(generate, DateTime.MaxValue, cancellationToken).ConfigureAwait(false);
            return Results.Json(new JsonObject
            {
                ["created"] = time.GetUtcNow().ToUnixTimeSeconds(),
                ["data"] = new JsonArray([.. response.Candidates.Select(c => (JsonNode)new JsonObject
                {
                    ["b64_json"] = Convert.ToBase64String(Png(c, channels, height, width, scale)),
                    ["path"] = c.Path,
                    ["score"] = c.HasScore ? c.Score : null,
                })]),
                ["search"] = SearchSummary(response),
            });
        });

    private static Task<IResult> Complete(HttpContext http, SearchService search, ModelRepository repository, ApiKeyInterceptor keys, TimeProvider time) =>
        Answer(http, keys, async (body, cancellationToken) =>
        {
            var request = OpenAiRequest.Read(body, OpenAiRequest.CompletionFields, "n");
            var model = Denoiser(repository, request.Model);
            if (model.Manifest?.Process != "masked")
            {
                throw OpenAiError.Invalid("model", $"model '{request.Model}' makes images, not text; use /v1/images/generations.");
            }

            var generate = request.ToGenerateRequest(body);
            var sampler = new MaskedSampler();
            if (body["temperature"] is { } temperature)
            {
                sampler.Temperature = OpenAiRequest.Number(temperature, "temperature");
            }

            if (body["top_p"] is { } topP)
            {
                sampler.TopP = OpenAiRequest.Number(topP, "top_p");
            }

            generate.MaskedSampler = sampler;
            var response = await search.GenerateAsync(generate, DateTime.MaxValue, cancellationToken).ConfigureAwait(false);
            var created = time.GetUtcNow().ToUnixTimeSeconds();
            var completionTokens = response.Candidates.Sum(c => c.Tokens.Count);
            return Results.Json(new JsonObject
            {
                ["id"] = $"cmpl-{created:x}-{generate.Seed:x}",
                ["object"] = "text_completion",
                ["created"] = created,
                ["model"] = request.Model,
                ["choices"] = new JsonArray([.. response.Candidates.Select((c, i) => (JsonNode)new JsonObject
                {
                    ["text"] = c.Text,
                    ["index"] = i,
                    ["logprobs"] = null,
                    ["finish_reason"] = "stop",
                    ["path"] = c.Path,
                    ["score"] = c.HasScore ? c.Score : null,
                })]),
                // Tokens as the model counts them: one per position of the prompt and of each returned sequence.
                ["usage"] = new JsonObject { ["prompt_tokens"] = request.Prompt.Length, ["completion_tokens"] = completionTokens, ["total_tokens"] = request.Prompt.Length + completionTokens },
                ["search"] = SearchSummary(response),
            });
        });

    /// <summary>Reads the JSON body, checks the API key, runs the handler, and answers any failure in OpenAI's error shape.</summary>
    private static async Task<IResult> Answer(HttpContext http, ApiKeyInterceptor keys, Func<JsonObject, CancellationToken, Task<IResult>> handle)
    {
        try
        {
            using var slot = keys.Admit(ApiKey(http.Request), countsAsSearch: true);
            JsonObject body;
            try
            {
                body = await JsonNode.ParseAsync(http.Request.Body, cancellationToken: http.RequestAborted).ConfigureAwait(false) as JsonObject
                    ?? throw OpenAiError.Invalid(null, "the request body must be a JSON object.");
            }
            catch (JsonException ex)
            {
                throw OpenAiError.Invalid(null, $"the request body is not valid JSON: {ex.Message}");
            }

            return await handle(body, http.RequestAborted).ConfigureAwait(false);
        }
        catch (OpenAiError error)
        {
            return error.ToResult();
        }
        catch (RpcException ex)
        {
            return OpenAiError.From(ex.Status).ToResult();
        }
    }

    /// <summary>The key from <c>Authorization: Bearer</c> (what OpenAI clients send) or <c>x-api-key</c>.</summary>
    private static string? ApiKey(HttpRequest request)
    {
        var authorization = request.Headers.Authorization.ToString();
        return authorization.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase)
            ? authorization["Bearer ".Length..].Trim()
            : request.Headers[ApiKeyInterceptor.Header].ToString();
    }

    private static ModelEntry Denoiser(ModelRepository repository, string name) =>
        repository.Models.FirstOrDefault(m => m.Name == name && m.Kind == ManifestNames.Denoiser && m.IsReady)
        ?? throw new OpenAiError(StatusCodes.Status404NotFound, "invalid_request_error", "model", "model_not_found",
            $"no ready denoiser named '{name}'; available: {string.Join(", ", repository.Models.Where(m => m.IsReady && m.Kind == ManifestNames.Denoiser).Select(m => m.Name))}.");

    /// <summary>The integer upscale that <c>size</c> asks for: "WxH" with W and H the model's width and height times the same k (default 8).</summary>
    private static int ImageScale(JsonObject body, int height, int width)
    {
        if (body["size"] is not { } size || size.GetValueKind() == JsonValueKind.Null)
        {
            return 8;
        }

        var text = size.GetValueKind() == JsonValueKind.String ? size.GetValue<string>() : size.ToJsonString();
        var parts = text.Split('x');
        if (parts.Length == 2 && int.TryParse(parts[0], out var w) && int.TryParse(parts[1], out var h)
            && w % width == 0 && h % height == 0 && w / width == h / height && w / width is >= 1 and <= 64)
        {
            return w / width;
        }

        throw OpenAiError.Invalid("size", $"this model draws {width}x{height} images; size must be a whole multiple of it (1 to 64 times, e.g. {width * 8}x{height * 8}), got '{text}'.");
    }

    private static byte[] Png(Protos.V1.Candidate candidate, int channels, int height, int width, int scale)
    {
        var pixels = Internal.TensorCodec.Decode<float>(candidate.Tensor.Span)!;
        var image = new RgbImage(width * scale, height * scale);
        var plane = height * width;
        for (var y = 0; y < height; y++)
        {
            for (var x = 0; x < width; x++)
            {
                // Samples live in [-1, 1]: black .. white; RGB images are channel-first.
                var at = (y * width) + x;
                var red = Level(pixels[at]);
                image.Fill(x * scale, y * scale, scale, scale, channels == 1 ? (red, red, red) : (red, Level(pixels[plane + at]), Level(pixels[(2 * plane) + at])));
            }
        }

        return PngEncoder.Encode(image);
    }

    private static byte Level(float value) => (byte)Math.Clamp((int)MathF.Round((value + 1f) * 127.5f), 0, 255);

    /// <summary>
    /// What the search did and cost: the contract's JSON of the cost account with its proto field names, counts as
    /// JSON numbers (proto3 JSON writes 64-bit integers as strings; OpenAI-style clients expect numbers).
    /// </summary>
    private static JsonObject SearchSummary(GenerateResponse response)
    {
        var formatter = new JsonFormatter(JsonFormatter.Settings.Default.WithPreserveProtoFieldNames(true).WithFormatDefaultValues(true));
        return new JsonObject
        {
            ["strategy"] = response.Strategy,
            ["budget_limited"] = response.BudgetLimited,
            ["fork_step"] = response.HasForkStep ? response.ForkStep : null,
            ["cost"] = Int64sAsNumbers(JsonNode.Parse(formatter.Format(response.Cost))!, Protos.V1.CostAccount.Descriptor),
            ["verifiers_left_out"] = new JsonArray([.. response.VerifiersLeftOut.Select(l => (JsonNode)new JsonObject { ["name"] = l.Name, ["reason"] = l.Reason })]),
        };
    }

    private static JsonNode Int64sAsNumbers(JsonNode node, Google.Protobuf.Reflection.MessageDescriptor descriptor)
    {
        foreach (var field in descriptor.Fields.InFieldNumberOrder())
        {
            switch (node[field.Name])
            {
                case JsonValue value when field.FieldType is Google.Protobuf.Reflection.FieldType.Int64 or Google.Protobuf.Reflection.FieldType.UInt64:
                    node[field.Name] = long.Parse(value.GetValue<string>(), System.Globalization.CultureInfo.InvariantCulture);
                    break;
                case JsonArray items when field.FieldType == Google.Protobuf.Reflection.FieldType.Message:
                    foreach (var item in items)
                    {
                        Int64sAsNumbers(item!, field.MessageType);
                    }

                    break;
            }
        }

        return node;
    }
}
