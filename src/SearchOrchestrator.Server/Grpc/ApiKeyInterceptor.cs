using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Microsoft.Extensions.Options;

namespace SearchOrchestrator.Server.Grpc;

/// <summary>One API key a client may present (configuration <c>Auth:ApiKeys:n</c>).</summary>
public sealed record ApiKeyOptions
{
    /// <summary>A name for logs and errors (never the key itself).</summary>
    public string Name { get; init; } = string.Empty;

    /// <summary>The secret the client sends in the <c>x-api-key</c> header.</summary>
    public string Key { get; init; } = string.Empty;

    /// <summary>Searches this key may run at once; 0 means only the server's own cap applies.</summary>
    public int MaxConcurrentSearches { get; init; }
}

/// <summary>API-key authentication (configuration section <c>Auth</c>); with no keys configured, calls are not authenticated.</summary>
public sealed record AuthOptions
{
    /// <summary>The configuration section these options bind from.</summary>
    public const string SectionName = "Auth";

    /// <summary>The accepted keys.</summary>
    public IReadOnlyList<ApiKeyOptions> ApiKeys { get; init; } = [];
}

/// <summary>
/// The secrets one host accepts and how it asks for them: <c>searchorch serve</c>'s API keys (<c>Auth:ApiKeys</c>), or a
/// <c>searchorch worker</c>'s one shared secret (<c>Worker:Secret</c>). No keys: every call is served.
/// </summary>
internal sealed record SharedSecrets(IReadOnlyList<ApiKeyOptions> Keys, IReadOnlyList<string> Headers, string Missing, string Invalid)
{
    /// <summary>The orchestrator's API keys, sent in <c>x-api-key</c>.</summary>
    public static SharedSecrets ApiKeys(AuthOptions auth) => new(
        auth.ApiKeys,
        [ApiKeyInterceptor.Header],
        $"this server needs an API key in the '{ApiKeyInterceptor.Header}' header.",
        $"the API key in '{ApiKeyInterceptor.Header}' is not valid.");

    /// <summary>
    /// A worker's shared secret, in <c>x-worker-secret</c> (the worker protocol's orchestrators) or <c>x-api-key</c>
    /// (KServe clients and orchestrators' <c>kserve</c> backends).
    /// </summary>
    public static SharedSecrets Worker(string? secret)
    {
        var ask = $"this worker needs its shared secret (Worker:Secret) in the '{Workers.WorkerService.SecretHeader}' or '{ApiKeyInterceptor.Header}' header; on an orchestrator set Workers:Secret (worker protocol) or Backends:KServe:<n>:ApiKey (Open Inference Protocol) to it.";
        return new(secret is { Length: > 0 } ? [new ApiKeyOptions { Name = "worker", Key = secret }] : [], [Workers.WorkerService.SecretHeader, ApiKeyInterceptor.Header], ask, ask);
    }
}

/// <summary>
/// The one shared-secret check of every gRPC service (health, reflection, and the Open Inference Protocol's ServerLive
/// and ServerReady stay open): a call must carry one of the host's <see cref="SharedSecrets"/>, compared in constant
/// time, or it gets Unauthenticated; each API key's concurrent searches are capped.
/// </summary>
internal sealed class ApiKeyInterceptor(SharedSecrets secrets) : Interceptor
{
    /// <summary>The request header that carries an API key.</summary>
    public const string Header = "x-api-key";

    private readonly (byte[] Hash, ApiKeyOptions Key)[] _keys = [.. secrets.Keys.Select(k => (Hash(k.Key), k))];
    private readonly ConcurrentDictionary<string, int> _running = new(StringComparer.Ordinal);

    public override async Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
    {
        using var slot = Admit(context);
        return await continuation(request, context).ConfigureAwait(false);
    }

    public override async Task ServerStreamingServerHandler<TRequest, TResponse>(TRequest request, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation)
    {
        using var slot = Admit(context);
        await continuation(request, responseStream, context).ConfigureAwait(false);
    }

    private IDisposable? Admit(ServerCallContext context) =>
        OpenInference.OpenInferenceService.OpenMethods.Contains(context.Method)
            ? null
            : Admit(secrets.Headers.Select(h => context.RequestHeaders.GetValue(h)).FirstOrDefault(v => !string.IsNullOrEmpty(v)), countsAsSearch: true);

    /// <summary>
    /// Checks a presented key (gRPC and HTTP/JSON: <c>x-api-key</c>; the OpenAI-compatible endpoints also take
    /// <c>Authorization: Bearer</c>); throws Unauthenticated, or ResourceExhausted past the key's concurrent searches.
    /// </summary>
    /// <returns>The key's search slot to dispose when the call ends, or null when nothing is counted.</returns>
    internal IDisposable? Admit(string? presented, bool countsAsSearch)
    {
        if (_keys.Length == 0)
        {
            return null;
        }

        if (string.IsNullOrEmpty(presented))
        {
            throw new RpcException(new Status(StatusCode.Unauthenticated, secrets.Missing));
        }

        var hash = Hash(presented);
        ApiKeyOptions? match = null;
        foreach (var (keyHash, key) in _keys)
        {
            // Every configured key is compared, each in constant time, so timing reveals nothing about which matched.
            if (CryptographicOperations.FixedTimeEquals(hash, keyHash))
            {
                match = key;
            }
        }

        if (match is null)
        {
            throw new RpcException(new Status(StatusCode.Unauthenticated, secrets.Invalid));
        }

        if (!countsAsSearch)
        {
            return null;
        }

        if (match.MaxConcurrentSearches > 0 && _running.AddOrUpdate(match.Name, 1, (_, n) => n + 1) > match.MaxConcurrentSearches)
        {
            _running.AddOrUpdate(match.Name, 0, (_, n) => n - 1);
            throw new RpcException(new Status(StatusCode.ResourceExhausted, $"API key '{match.Name}' is running its limit of {match.MaxConcurrentSearches} concurrent searches; retry later."));
        }

        return match.MaxConcurrentSearches > 0 ? new Slot(this, match.Name) : null;
    }

    private static byte[] Hash(string key) => SHA256.HashData(Encoding.UTF8.GetBytes(key));

    private sealed class Slot(ApiKeyInterceptor owner, string name) : IDisposable
    {
        public void Dispose() => owner._running.AddOrUpdate(name, 0, (_, n) => n - 1);
    }
}

/// <summary>Validates <see cref="AuthOptions"/>, naming every bad key entry.</summary>
internal sealed class AuthOptionsValidator : IValidateOptions<AuthOptions>
{
    public ValidateOptionsResult Validate(string? name, AuthOptions options)
    {
        var failures = new List<string>();
        for (var i = 0; i < options.ApiKeys.Count; i++)
        {
            var key = options.ApiKeys[i];
            if (string.IsNullOrEmpty(key.Name))
            {
                failures.Add($"{AuthOptions.SectionName}:ApiKeys:{i}:Name must name the key.");
            }

            if (key.Key.Length < 16)
            {
                failures.Add($"{AuthOptions.SectionName}:ApiKeys:{i}:Key must be at least 16 characters.");
            }

            if (key.MaxConcurrentSearches < 0)
            {
                failures.Add($"{AuthOptions.SectionName}:ApiKeys:{i}:MaxConcurrentSearches must be >= 0 (0 = no per-key limit), got {key.MaxConcurrentSearches}.");
            }
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
