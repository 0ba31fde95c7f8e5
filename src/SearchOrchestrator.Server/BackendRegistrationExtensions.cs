using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using SearchOrchestrator.Server;
using SearchOrchestrator.Server.Backends;
using SearchOrchestrator.Server.Discovery;
using SearchOrchestrator.Onnx.Repository;
using SearchOrchestrator.Server.OpenInference;
using SearchOrchestrator.Workers;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers backend kinds (the Open Inference Protocol's, a plug-in's) and DNS discovery on a SearchOrchestrator host.</summary>
public static class BackendRegistrationExtensions
{
    /// <summary>
    /// Adds the <c>kserve</c> backend kind: binds <see cref="KServeOptions"/> from <c>Backends:KServe</c> and validates
    /// them at start, naming every bad setting.
    /// </summary>
    public static SearchOrchestratorBuilder AddKServeBackends(this SearchOrchestratorBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.AddOptions<KServeOptions>().BindConfiguration(KServeOptions.SectionName).ValidateOnStart();
        builder.Services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<KServeOptions>, KServeOptionsValidator>());
        builder.Services.TryAddEnumerable(ServiceDescriptor.Singleton<IBackendFactory, KServeBackendFactory>(provider =>
        {
            var repository = provider.GetRequiredService<ModelRepository>();
            return new KServeBackendFactory(
                provider.GetRequiredService<WorkerPool>(),
                name => repository.Models.FirstOrDefault(m => m.Name == name && m.IsReady)?.Manifest,
                name => repository.GetStages(name)?.Decoder.Description,
                provider.GetService<TimeProvider>(),
                provider.GetService<ILogger<KServeBackend>>());
        }));
        return builder;
    }

    /// <summary>
    /// Adds a backend kind: <typeparamref name="TFactory"/> (resolved from the container, so it may take any registered
    /// service) connects backends of its <see cref="IBackendFactory.Kind"/>, and <see cref="PoolMembership.JoinAsync"/>
    /// joins a <see cref="BackendEndpoint"/> of that kind to the pool, where placement uses it like any other backend.
    /// </summary>
    public static SearchOrchestratorBuilder AddBackendKind<TFactory>(this SearchOrchestratorBuilder builder)
        where TFactory : class, IBackendFactory
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.TryAddEnumerable(ServiceDescriptor.Singleton<IBackendFactory, TFactory>());
        return builder;
    }

    /// <summary>
    /// Binds <see cref="DnsDiscoveryOptions"/> from <c>Discovery:Dns</c> (validated at start), runs one
    /// <see cref="DnsDiscovery"/> as a hosted service (resolve it to subscribe to joins and leaves), and feeds the pool
    /// from it (<see cref="DiscoveryPoolFeed"/>): discovered addresses join as backends of <c>Discovery:Dns:Kind</c> (any
    /// registered kind: <c>worker</c>, <c>kserve</c>, or one added with <see cref="AddBackendKind{TFactory}"/>) and leave
    /// when they are gone. A registered <see cref="DnsResolver"/> and <see cref="TimeProvider"/> replace the system's.
    /// </summary>
    public static SearchOrchestratorBuilder AddDnsDiscovery(this SearchOrchestratorBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.AddOptions<DnsDiscoveryOptions>().BindConfiguration(DnsDiscoveryOptions.SectionName).ValidateOnStart();
        builder.Services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<DnsDiscoveryOptions>, DnsDiscoveryOptionsValidator>(
            provider => new DnsDiscoveryOptionsValidator(() => provider.GetRequiredService<PoolMembership>().Kinds)));
        builder.Services.TryAddSingleton(provider => new DnsDiscovery(
            provider.GetRequiredService<IOptions<DnsDiscoveryOptions>>().Value,
            provider.GetService<DnsResolver>(),
            provider.GetService<TimeProvider>(),
            provider.GetService<ILogger<DnsDiscovery>>()));
        builder.Services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, DnsDiscoveryHost>());
        builder.Services.TryAddSingleton(provider => new DiscoveryPoolFeed(
            provider.GetRequiredService<DnsDiscovery>(),
            provider.GetRequiredService<PoolMembership>(),
            provider.GetRequiredService<IOptions<DnsDiscoveryOptions>>().Value,
            provider.GetService<ILogger<DiscoveryPoolFeed>>()));
        builder.Services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, DiscoveryPoolFeedHost>());
        return builder;
    }
}

/// <summary>Starts the registered <see cref="DiscoveryPoolFeed"/> with the host (resolved at start, after validation).</summary>
internal sealed class DiscoveryPoolFeedHost(IServiceProvider services) : IHostedService
{
    private DiscoveryPoolFeed? _feed;

    public Task StartAsync(CancellationToken cancellationToken) =>
        (_feed = services.GetRequiredService<DiscoveryPoolFeed>()).StartAsync(cancellationToken);

    public Task StopAsync(CancellationToken cancellationToken) => _feed?.StopAsync(cancellationToken) ?? Task.CompletedTask;
}

/// <summary>
/// Starts the registered <see cref="DnsDiscovery"/> with the host. It resolves the discovery only when starting, after
/// the options were validated, so bad settings are reported together rather than by the first one read.
/// </summary>
internal sealed class DnsDiscoveryHost(IServiceProvider services) : IHostedService
{
    private DnsDiscovery? _discovery;

    public Task StartAsync(CancellationToken cancellationToken) =>
        (_discovery = services.GetRequiredService<DnsDiscovery>()).StartAsync(cancellationToken);

    public Task StopAsync(CancellationToken cancellationToken) => _discovery?.StopAsync(cancellationToken) ?? Task.CompletedTask;
}
