using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using SearchOrchestrator.Onnx.Runtime;
using SearchOrchestrator.Search;
using SearchOrchestrator.Server.Grpc;
using SearchOrchestrator.Server.Workers;

namespace SearchOrchestrator.Server;

/// <summary>
/// Builds the <c>searchorch worker</c> host: the same models and batchers as <c>serve</c>, exposed through the worker
/// protocol (<c>protos/worker.proto</c>) for orchestrators on other machines, the Open Inference Protocol (KServe v2)
/// for standard clients and orchestrators' <c>kserve</c> backends, plus health, reflection and <c>/metrics</c>. With
/// <c>Worker:Secret</c> set, both protocols require the secret.
/// </summary>
public static class SearchOrchestratorWorker
{
    /// <summary>The default address: plaintext, loopback only.</summary>
    public const string DefaultUrl = "http://127.0.0.1:50061";

    /// <summary>
    /// Creates the worker from command-line arguments (<c>--urls</c>, <c>--models</c>, <c>--secret</c>, <c>--join</c>,
    /// any <c>--Section:Key</c>), environment variables and <c>appsettings.json</c>; <paramref name="defaults"/> rank below
    /// every other source.
    /// </summary>
    public static WebApplication Build(string[] args, IReadOnlyDictionary<string, string?>? defaults = null)
    {
        var builder = WebApplication.CreateBuilder(args);
        builder.Configuration.Sources.Insert(0, new Microsoft.Extensions.Configuration.Memory.MemoryConfigurationSource { InitialData = defaults });
        builder.Configuration.AddCommandLine(args, new Dictionary<string, string>
        {
            ["--models"] = $"{ModelRepositoryOptions.SectionName}:Path",
            ["--secret"] = $"{WorkerHostOptions.SectionName}:Secret",
            ["--join"] = $"{WorkerHostOptions.SectionName}:Join",
            ["--advertise"] = $"{WorkerHostOptions.SectionName}:Advertise",
        });
        SecretFilesOptions.AddTo(builder.Configuration);
        if (string.IsNullOrEmpty(builder.Configuration["urls"]) && string.IsNullOrEmpty(builder.Configuration["ASPNETCORE_URLS"]))
        {
            builder.WebHost.UseUrls(DefaultAddress.Choose(DefaultUrl));
        }

        var serving = builder.Configuration.GetSection(ServingOptions.SectionName).Get<ServingOptions>() ?? new ServingOptions();
        var worker = builder.Configuration.GetSection(WorkerHostOptions.SectionName).Get<WorkerHostOptions>() ?? new WorkerHostOptions();
        var certificate = SearchOrchestratorServer.LoadCertificate(serving);
        Http.ServiceEndpoint.Configure(builder, certificate);
        builder.Services.AddSingleton(TimeProvider.System);
        builder.Services.AddSearchOrchestrator();
        builder.Services.AddOptions<WorkerHostOptions>().BindConfiguration(WorkerHostOptions.SectionName).ValidateOnStart();
        builder.Services.AddSingleton<IValidateOptions<WorkerHostOptions>, WorkerHostOptionsValidator>();
        builder.Services.AddSingleton(provider => new WorkerRuntime(
            provider.GetRequiredService<IModelProvider>(),
            provider.GetRequiredService<SearchEngine>(),
            provider.GetRequiredService<IOptions<WorkerHostOptions>>().Value.MaxResidentBytes,
            provider.GetRequiredService<IOptions<WorkerHostOptions>>().Value.MaxResidentBytesPerSession ?? (provider.GetRequiredService<IOptions<WorkerHostOptions>>().Value.MaxResidentBytes / 2),
            provider.GetService<TimeProvider>()));
        builder.Services.AddHostedService<ResidentSessionExpiry>();
        builder.Services.AddHostedService<WorkerRegistration>();
        builder.Services.AddSingleton(provider => SharedSecrets.Worker(provider.GetRequiredService<IOptions<WorkerHostOptions>>().Value.Secret));
        builder.Services.AddGrpc(o =>
            {
                o.MaxReceiveMessageSize = worker.MaxReceiveMessageSize;
                o.MaxSendMessageSize = null;
            })
            .AddCallInterceptors<WorkerService>()
            .AddCallInterceptors<OpenInference.OpenInferenceService>();
        builder.Services.AddGrpcReflection();
        builder.Services.AddGrpcHealthChecks().AddCheck<ModelsHealthCheck>("models");
        Http.ServiceEndpoint.AddMetrics(builder.Services);

        SettingsCheck.ThrowIfUnknown(builder.Configuration, builder.Services, typeof(ServingOptions), typeof(SecretFilesOptions));
        var app = builder.Build();
        SearchOrchestratorServer.CheckTransport(app.Urls.Count > 0 ? app.Urls : (builder.Configuration["urls"] ?? DefaultUrl).Split(';'), serving, certificate);
        app.MapGrpcService<WorkerService>();
        app.MapOpenInferenceProtocol();
        app.MapGrpcHealthChecksService();
        app.MapGrpcReflectionService();
        Http.ServiceEndpoint.MapMetrics(app);
        return app;
    }
}
