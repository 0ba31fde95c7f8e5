using System.Text.Json;
using System.Text.Json.Nodes;
using Google.Protobuf;
using Google.Protobuf.Reflection;
using SearchOrchestrator.Protos.V1;

namespace SearchOrchestrator.Server.OpenAi;

/// <summary>
/// The common part of an OpenAI-style generation request (<c>model</c>, <c>prompt</c>, <c>n</c>) and its mapping, with
/// the search extension fields, onto the contract's <see cref="GenerateRequest"/> through protobuf's own JSON mapping.
/// </summary>
internal sealed record OpenAiRequest(string Model, string Prompt, int N)
{
    /// <summary>The search, as extra body fields (the names SGLang and vLLM-Omni use where they have one).</summary>
    private static readonly string[] SearchFields = ["seed", "num_inference_steps", "guidance_scale", "eta", "strategy", "strategy_params", "verifiers", "leave_out_failed_verifiers", "budget"];

    /// <summary>Fields of <c>POST /v1/images/generations</c>; OpenAI's <c>quality</c>, <c>style</c> and <c>user</c> are accepted and have no effect.</summary>
    public static readonly string[] ImageFields = ["model", "prompt", "n", "size", "response_format", "quality", "style", "user", .. SearchFields];

    /// <summary>Fields of <c>POST /v1/completions</c>; <c>max_tokens</c> and <c>user</c> are accepted and have no effect (a masked model fills its whole sequence).</summary>
    public static readonly string[] CompletionFields = ["model", "prompt", "n", "max_tokens", "temperature", "top_p", "user", .. SearchFields];

    /// <summary>The request's <c>strategy</c> oneof: the built-ins' typed messages, and <c>named</c> for any registered strategy.</summary>
    private static readonly FieldDescriptor[] Strategies = [.. GenerateRequest.Descriptor.Oneofs.Single(o => o.Name == "strategy").Fields];

    /// <summary>The <c>named</c> strategy field.</summary>
    private static readonly FieldDescriptor Named = GenerateRequest.Descriptor.FindFieldByName("named");

    /// <summary>Contract field names as the OpenAI-side request calls them, for errors.</summary>
    internal static readonly IReadOnlyDictionary<string, string> OpenAiNames = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["condition"] = "prompt",
        ["steps"] = "num_inference_steps",
        ["guidance"] = "guidance_scale",
        ["candidates"] = "n",
    };

    public static OpenAiRequest Read(JsonObject body, string[] allowed, string countField)
    {
        foreach (var (key, _) in body)
        {
            if (!allowed.Contains(key, StringComparer.Ordinal))
            {
                throw OpenAiError.Invalid(key, $"unknown field '{key}'; this endpoint takes {string.Join(", ", allowed)}.");
            }
        }

        var model = Text(body, "model") ?? throw OpenAiError.Invalid("model", "model is required (see GET /v1/models).");
        var prompt = Text(body, "prompt") ?? throw OpenAiError.Invalid("prompt", "prompt is required (a class-conditioned model takes its condition label, e.g. \"7\").");
        var n = body[countField] is { } count ? Integer(count, countField) : 1;
        if (n is < 1 or > 64)
        {
            throw OpenAiError.Invalid(countField, $"{countField} must be 1 to 64, got {n}.");
        }

        return new OpenAiRequest(model, prompt, (int)n);
    }

    /// <summary>
    /// The contract request: the OpenAI fields and the search fields written as the proto's JSON and parsed by
    /// protobuf's JSON mapping, so every value is checked as a gRPC JSON client's would be. Without a strategy, n
    /// independent samples (best_of_n with n); with one, its best n candidates.
    /// </summary>
    public GenerateRequest ToGenerateRequest(JsonObject body)
    {
        var proto = new JsonObject { ["model"] = Model, ["condition"] = Prompt, ["candidates"] = N };
        if (body["seed"] is { } seed)
        {
            proto["seed"] = Integer(seed, "seed");
        }

        if (body["num_inference_steps"] is { } steps)
        {
            proto["steps"] = Integer(steps, "num_inference_steps");
        }

        if (body["guidance_scale"] is { } guidance)
        {
            proto["guidance"] = Number(guidance, "guidance_scale");
        }

        if (body["eta"] is { } eta)
        {
            proto["eta"] = Number(eta, "eta");
        }

        if (body["verifiers"] is { } verifiers)
        {
            proto["verifiers"] = Checked(verifiers, "verifiers", GenerateRequest.Descriptor.FindFieldByName("verifiers"));
        }

        if (body["leave_out_failed_verifiers"] is { } leaveOut)
        {
            var field = GenerateRequest.Descriptor.FindFieldByName("leave_out_failed_verifiers");
            proto[field.JsonName] = Checked(leaveOut, "leave_out_failed_verifiers", field);
        }

        if (body["budget"] is { } budget)
        {
            proto["budget"] = Checked(budget, "budget", GenerateRequest.Descriptor.FindFieldByName("budget"));
        }

        if (Text(body, "strategy") is { } name)
        {
            // A built-in goes in its typed message; any other name (a plug-in's) as named, which the catalog resolves.
            var parameters = body["strategy_params"]?.DeepClone() ?? new JsonObject();
            var typed = Strategies.FirstOrDefault(f => f.Name == name && f != Named);
            proto[typed?.Name ?? Named.JsonName] = typed is not null
                ? Checked(parameters, "strategy_params", typed)
                : Checked(new JsonObject { ["name"] = name, ["parameters"] = parameters }, "strategy_params", Named);
        }
        else if (body["strategy_params"] is not null)
        {
            throw OpenAiError.Invalid("strategy_params", "strategy_params needs a strategy.");
        }
        else
        {
            proto["best_of_n"] = new JsonObject { ["n"] = N };
        }

        return JsonParser.Default.Parse<GenerateRequest>(proto.ToJsonString());
    }

    /// <summary>A JSON value that protobuf's JSON mapping accepts for <paramref name="field"/>, or an error naming the OpenAI-side field.</summary>
    private static JsonNode Checked(JsonNode value, string name, FieldDescriptor field)
    {
        try
        {
            JsonParser.Default.Parse(new JsonObject { [field.JsonName] = value.DeepClone() }.ToJsonString(), GenerateRequest.Descriptor);
            return value.DeepClone();
        }
        catch (InvalidProtocolBufferException ex)
        {
            throw OpenAiError.Invalid(name, $"{name}: {ex.Message}");
        }
    }

    private static string? Text(JsonObject body, string name) => body[name] switch
    {
        null => null,
        JsonValue v when v.GetValueKind() == JsonValueKind.String => v.GetValue<string>(),
        _ => throw OpenAiError.Invalid(name, $"{name} must be a string."),
    };

    public static double Number(JsonNode value, string name) =>
        value is JsonValue v && v.GetValueKind() == JsonValueKind.Number ? v.GetValue<double>() : throw OpenAiError.Invalid(name, $"{name} must be a number.");

    public static long Integer(JsonNode value, string name) =>
        value is JsonValue v && v.GetValueKind() == JsonValueKind.Number && v.TryGetValue<long>(out var n) ? n : throw OpenAiError.Invalid(name, $"{name} must be an integer.");
}
