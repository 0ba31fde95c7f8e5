using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using SearchOrchestrator.Server.Grpc;
using SearchOrchestrator.Server.OpenAi;

namespace SearchOrchestrator.Server;

/// <summary>
/// Builds the <c>searchorch serve</c> host: the search service over gRPC and HTTP/JSON (with its OpenAPI document), the
/// OpenAI-compatible endpoints, the search-tree viewer, health, reflection and <c>/metrics</c>, all on one port.
/// </summary>
public static class SearchOrchestratorServer
{
    /// <summary>The default address: plaintext, loopback only.</summary>
    public const string DefaultUrl = "http://127.0.0.1:50051";

    /// <summary>
    /// Creates the application from command-line arguments (<c>--urls</c>, <c>--Models:Path</c>, …), environment
    /// variables and <c>appsettings.json</c>. Models load before the host reports started; health reports SERVING once
    /// the repository has a ready denoiser. <paramref name="defaults"/> rank below every other source.
    /// </summary>
    public static WebApplication Build(string[] args, IReadOnlyDictionary<string, string?>? defaults = null) => Build(args, defaults, configure: null);

    /// <summary>As <see cref="Build(string[], IReadOnlyDictionary{string, string?}?)"/>; <paramref name="configure"/> adds to the registration (e.g. <c>AddStrategy&lt;T&gt;()</c>).</summary>
    public static WebApplication Build(string[] args, IReadOnlyDictionary<string, string?>? defaults, Action<SearchOrchestratorBuilder>? configure)
    {
        var builder = WebApplication.CreateBuilder(args);
        builder.Configuration.Sources.Insert(0, new Microsoft.Extensions.Configuration.Memory.MemoryConfigurationSource { InitialData = defaults });
        // Short forms for the settings people pass most; any setting also works as --Section:Key value.
        builder.Configuration.AddCommandLine(args, new Dictionary<string, string>
        {
            ["--models"] = $"{Onnx.Runtime.ModelRepositoryOptions.SectionName}:Path",
            ["--plugins"] = $"{OpenInference.VerifierPluginOptions.SectionName}:Path",
        });
        SecretFilesOptions.AddTo(builder.Configuration);
        if (string.IsNullOrEmpty(builder.Configuration["urls"]) && string.IsNullOrEmpty(builder.Configuration["ASPNETCORE_URLS"]))
        {
            builder.WebHost.UseUrls(DefaultAddress.Choose(DefaultUrl));
        }

        var serving = builder.Configuration.GetSection(ServingOptions.SectionName).Get<ServingOptions>() ?? new ServingOptions();
        var certificate = LoadCertificate(serving);
        Http.ServiceEndpoint.Configure(builder, certificate);
        builder.Services.AddSingleton(TimeProvider.System);
        var orchestrator = builder.Services.AddSearchOrchestrator().AddKServeBackends();
        configure?.Invoke(orchestrator);
        if (builder.Configuration.GetSection(Discovery.DnsDiscoveryOptions.SectionName).Exists())
        {
            orchestrator.AddDnsDiscovery();
        }

        builder.Services.AddOptions<ServingOptions>().BindConfiguration(ServingOptions.SectionName).ValidateOnStart();
        builder.Services.AddSingleton<Microsoft.Extensions.Options.IValidateOptions<ServingOptions>, ServingOptionsValidator>();
        builder.Services.AddSingleton<SearchAdmission>();
        // Graceful shutdown is the host's: Kestrel stops accepting, in-flight calls get the drain timeout, then their
        // cancellation tokens fire and the searches stop.
        builder.Services.AddOptions<Microsoft.Extensions.Hosting.HostOptions>().Configure<Microsoft.Extensions.Options.IOptions<ServingOptions>>((host, serving) => host.ShutdownTimeout = serving.Value.DrainTimeout);
        var maxMessage = builder.Configuration.GetValue($"{ServingOptions.SectionName}:{nameof(ServingOptions.MaxReceiveMessageSize)}", new ServingOptions().MaxReceiveMessageSize);
        builder.Services.AddOptions<AuthOptions>().BindConfiguration(AuthOptions.SectionName).ValidateOnStart();
        builder.Services.AddSingleton<Microsoft.Extensions.Options.IValidateOptions<AuthOptions>, AuthOptionsValidator>();
        builder.Services.AddSingleton(provider => SharedSecrets.ApiKeys(provider.GetRequiredService<Microsoft.Extensions.Options.IOptions<AuthOptions>>().Value));
        // Resolvable outside gRPC calls too: the OpenAI-compatible endpoints run their searches through it.
        builder.Services.AddScoped<SearchService>();
        var maxSend = builder.Configuration.GetValue($"{ServingOptions.SectionName}:{nameof(ServingOptions.MaxSendMessageSize)}", new ServingOptions().MaxSendMessageSize);
        builder.Services.AddGrpc(o =>
            {
                o.MaxReceiveMessageSize = maxMessage;
                o.MaxSendMessageSize = maxSend;
            })
            .AddJsonTranscoding(o => o.JsonSettings.IgnoreDefaultValues = true)
            .AddCallInterceptors<SearchService>()
            .AddCallInterceptors<OpenInference.OpenInferenceService>()
            .AddCallInterceptors<Workers.WorkerRegistryService>(secret: false);
        builder.Services.AddGrpcReflection();
        builder.Services.AddGrpcHealthChecks().AddCheck<ModelsHealthCheck>("models");
        builder.Services.AddHostedService<Backends.WorkerPoolService>();
        Http.HttpApi.AddOpenApiDocument(builder.Services);

        Http.ServiceEndpoint.AddMetrics(builder.Services);

        SettingsCheck.ThrowIfUnknown(builder.Configuration, builder.Services, typeof(SecretFilesOptions));
        var app = builder.Build();
        CheckTransport(app.Urls.Count > 0 ? app.Urls : (builder.Configuration["urls"] ?? DefaultUrl).Split(';'), serving, certificate);
        app.Use(UnparsableRequests.Guard(maxMessage, Protos.V1.Search.Descriptor));
        app.MapGrpcService<SearchService>();
        app.MapGrpcService<Workers.WorkerRegistryService>();
        app.MapOpenInferenceProtocol();
        app.MapGrpcHealthChecksService();
        app.MapGrpcReflectionService();
        Http.ServiceEndpoint.MapMetrics(app);
        Http.HttpApi.MapOpenApiDocument(app);
        app.MapOpenAiCompatible();
        Http.SearchTreeViewer.Map(app);
        return app;
    }

    internal static X509Certificate2? LoadCertificate(ServingOptions serving)
    {
        if (string.IsNullOrEmpty(serving.CertificatePath))
        {
            return null;
        }

        try
        {
            return X509Certificate2.CreateFromPemFile(serving.CertificatePath, serving.CertificateKeyPath);
        }
        catch (Exception ex) when (ex is IOException or CryptographicException or UnauthorizedAccessException)
        {
            throw new InvalidOperationException($"{ServingOptions.SectionName}:CertificatePath / CertificateKeyPath: cannot load the TLS certificate '{serving.CertificatePath}': {ex.Message}", ex);
        }
    }

    /// <summary>Plaintext only on loopback unless allowed; https needs a certificate.</summary>
    internal static void CheckTransport(IEnumerable<string> urls, ServingOptions serving, X509Certificate2? certificate)
    {
        foreach (var url in urls.Select(u => u.Trim()).Where(u => u.Length > 0))
        {
            var uri = new Uri(url.Replace("://*", "://0.0.0.0", StringComparison.Ordinal).Replace("://+", "://0.0.0.0", StringComparison.Ordinal));
            if (uri.Scheme == Uri.UriSchemeHttps && certificate is null)
            {
                throw new InvalidOperationException($"{url} is https but no certificate is configured; set {ServingOptions.SectionName}:CertificatePath and {ServingOptions.SectionName}:CertificateKeyPath (PEM).");
            }

            if (uri.Scheme == Uri.UriSchemeHttp && !uri.IsLoopback && !serving.AllowPlaintextRemote)
            {
                throw new InvalidOperationException($"{url} would serve plaintext beyond this machine; use https:// with {ServingOptions.SectionName}:CertificatePath, or set {ServingOptions.SectionName}:AllowPlaintextRemote=true.");
            }
        }
    }
}

/// <summary>
/// Healthy (SERVING) once the repository serves at least one denoiser and every served denoiser has a backend that can
/// run it now: local compute (<c>Workers:UseLocal</c>), or a worker or KServe server in rotation that hosts it. Failed
/// models are listed either way.
/// </summary>
internal sealed class ModelsHealthCheck(Onnx.Repository.ModelRepository repository, SearchOrchestrator.Workers.WorkerPool pool) : Microsoft.Extensions.Diagnostics.HealthChecks.IHealthCheck
{
    public Task<Microsoft.Extensions.Diagnostics.HealthChecks.HealthCheckResult> CheckHealthAsync(Microsoft.Extensions.Diagnostics.HealthChecks.HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var failed = string.Join("; ", repository.Models.Where(m => !m.IsReady).Select(m => m.Error));
        var served = repository.Models.Where(m => m.IsReady && m.Kind == Onnx.Manifests.ManifestNames.Denoiser).Select(m => m.Name).ToList();
        var stranded = pool.Options.UseLocal ? [] : served.Where(m => !pool.Hosting(m).Any(b => b.IsAvailable)).ToList();
        var failedNote = failed.Length == 0 ? string.Empty : $"; failed: {failed}";
        return Task.FromResult(
            served.Count == 0 ? Microsoft.Extensions.Diagnostics.HealthChecks.HealthCheckResult.Unhealthy($"no denoiser is ready{failedNote}")
            : stranded.Count > 0 ? Microsoft.Extensions.Diagnostics.HealthChecks.HealthCheckResult.Unhealthy($"no backend can run {string.Join(", ", stranded)}: local compute is off (Workers:UseLocal=false) and no worker or KServe server hosting it is in rotation{failedNote}")
            : Microsoft.Extensions.Diagnostics.HealthChecks.HealthCheckResult.Healthy(failed.Length == 0 ? "all models ready" : $"serving{failedNote}"));
    }
}
