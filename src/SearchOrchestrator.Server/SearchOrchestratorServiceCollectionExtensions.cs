using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using SearchOrchestrator.Onnx.Repository;
using SearchOrchestrator.Server;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers SearchOrchestrator in a host.</summary>
public static class SearchOrchestratorServiceCollectionExtensions
{
    /// <summary>
    /// Adds the model repository, bound from the <c>Models</c> configuration section and validated at start,
    /// and loads every model before the host reports started.
    /// </summary>
    public static SearchOrchestratorBuilder AddSearchOrchestrator(this IServiceCollection services)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.AddOptions<ModelRepositoryOptions>()
            .BindConfiguration(ModelRepositoryOptions.SectionName)
            .ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<ModelRepositoryOptions>, ModelRepositoryOptionsValidator>());
        services.TryAddSingleton(provider => ModelRepository.Load(
            provider.GetRequiredService<IOptions<ModelRepositoryOptions>>().Value,
            provider.GetRequiredService<ILoggerFactory>().CreateLogger<ModelRepository>()));
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, ModelRepositoryLoader>());
        return new SearchOrchestratorBuilder(services);
    }
}
