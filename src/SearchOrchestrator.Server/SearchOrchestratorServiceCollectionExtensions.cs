using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using SearchOrchestrator.Onnx.Manifests;
using SearchOrchestrator.Onnx.Repository;
using SearchOrchestrator.Onnx.Runtime;
using SearchOrchestrator.Scheduling;
using SearchOrchestrator.Search;
using SearchOrchestrator.Server;
using SearchOrchestrator.Server.Backends;
using SearchOrchestrator.Server.Plugins;
using SearchOrchestrator.Server.OpenInference;
using SearchOrchestrator.Server.Workers;
using SearchOrchestrator.Strategies;
using SearchOrchestrator.Verifiers;
using SearchOrchestrator.Workers;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers SearchOrchestrator in a host.</summary>
public static class SearchOrchestratorServiceCollectionExtensions
{
    /// <summary>
    /// Adds the model repository (section <c>Models</c>), verifier and strategy plug-ins and <c>kserve</c> verifiers (section <c>Verifiers</c>), the
    /// model catalog with the built-in object counter (and the verifiers only the pool's workers serve), the strategy
    /// catalog (the built-ins, those added with <c>AddStrategy&lt;T&gt;()</c> and plug-ins), the search engine (section
    /// <c>Batching</c>), and the pool of remote backends (section <c>Workers</c>) with the <c>worker</c> kind; options are
    /// validated at start and every model is loaded before the host reports started. More backend kinds:
    /// <c>AddKServeBackends</c>, <c>AddBackendKind</c>.
    /// </summary>
    public static SearchOrchestratorBuilder AddSearchOrchestrator(this IServiceCollection services)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.AddOptions<ModelRepositoryOptions>().BindConfiguration(ModelRepositoryOptions.SectionName).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<ModelRepositoryOptions>, ModelRepositoryOptionsValidator>());
        services.AddOptions<VerifierPluginOptions>().BindConfiguration(VerifierPluginOptions.SectionName).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<VerifierPluginOptions>, KServeVerifierOptionsValidator>());
        services.TryAddSingleton(provider => new KServeVerifiers(
            provider.GetRequiredService<IOptions<VerifierPluginOptions>>().Value.Remote,
            provider.GetService<TimeProvider>(),
            provider.GetService<ILoggerFactory>(),
            provider.GetRequiredService<IOptions<WorkerOptions>>().Value));
        services.AddOptions<BatchingOptions>().BindConfiguration(BatchingOptions.SectionName).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<BatchingOptions>, BatchingOptionsValidator>());

        services.TryAddSingleton(provider => ModelRepository.Load(
            provider.GetRequiredService<IOptions<ModelRepositoryOptions>>().Value,
            provider.GetRequiredService<ILoggerFactory>().CreateLogger<ModelRepository>()));
        services.TryAddSingleton(provider => provider.GetRequiredService<IOptions<VerifierPluginOptions>>().Value.Path is { Length: > 0 } folder
            ? PluginLoader.Load(folder, provider.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(PluginLoader)))
            : LoadedPlugins.None);
        services.TryAddSingleton<IModelProvider>(provider =>
            // Verifiers only the pool's workers serve are scored there (resolved when asked for: workers join later).
            new ModelCatalog(
                provider.GetRequiredService<ModelRepository>(),
                [new ObjectCounter(), new SudokuVerifier(), SudokuVerifier.Conflicts(), new CompositionJudge(), .. provider.GetServices<IVerifier>(), .. provider.GetRequiredService<LoadedPlugins>().Verifiers, .. provider.GetRequiredService<KServeVerifiers>().All],
                name => provider.GetRequiredService<WorkerPool>().RemoteVerifier(name)));
        services.TryAddSingleton(provider => new StrategyCatalog(
            [.. StrategyCatalog.BuiltIns, .. provider.GetServices<StrategyDefinition>(), .. provider.GetRequiredService<LoadedPlugins>().Strategies]));
        services.AddOptions<WorkerOptions>().BindConfiguration(WorkerOptions.SectionName).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<WorkerOptions>, WorkerOptionsValidator>());
        services.TryAddSingleton(provider =>
        {
            var options = provider.GetRequiredService<IOptions<WorkerOptions>>().Value;
            var repository = provider.GetRequiredService<ModelRepository>();
            return new WorkerPool(
                (endpoint, session) => new GrpcWorkerClient(endpoint, session, options.Secret, TlsTrust.CreateHandler(options.Tls)),
                name => repository.Models.FirstOrDefault(m => m.Name == name && m.IsReady)?.Manifest?.Sha256,
                options,
                provider.GetService<TimeProvider>(),
                name => repository.Models.Any(m => m.Name == name && m.IsReady && m.Kind == ManifestNames.Denoiser) ? repository.GetDenoiser(name).Description : null,
                provider.GetService<ILogger<WorkerPool>>());
        });
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IBackendFactory, WorkerBackendFactory>(provider => new WorkerBackendFactory(provider.GetRequiredService<WorkerPool>())));
        services.TryAddSingleton(provider => new PoolMembership(
            provider.GetRequiredService<WorkerPool>(),
            provider.GetServices<IBackendFactory>(),
            provider.GetService<TimeProvider>(),
            provider.GetService<ILogger<PoolMembership>>()));
        services.TryAddSingleton(provider => new SearchEngine(
            provider.GetRequiredService<IModelProvider>(),
            provider.GetRequiredService<IOptions<BatchingOptions>>().Value,
            provider.GetService<TimeProvider>(),
            provider.GetRequiredService<WorkerPool>(),
            provider.GetService<ILogger<SearchEngine>>()));
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, ModelRepositoryLoader>());
        // One instance for the host's life (gRPC would make one per call): it holds each served model's statistics.
        services.TryAddSingleton<OpenInferenceService>();
        return new SearchOrchestratorBuilder(services);
    }
}

/// <summary>Validates <see cref="BatchingOptions"/>, naming every bad setting.</summary>
internal sealed class BatchingOptionsValidator : IValidateOptions<BatchingOptions>
{
    public ValidateOptionsResult Validate(string? name, BatchingOptions options)
    {
        var failures = options.Validate();
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}

/// <summary>Validates <see cref="WorkerOptions"/>, naming every bad setting.</summary>
internal sealed class WorkerOptionsValidator : IValidateOptions<WorkerOptions>
{
    public ValidateOptionsResult Validate(string? name, WorkerOptions options)
    {
        var failures = options.Validate();
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
