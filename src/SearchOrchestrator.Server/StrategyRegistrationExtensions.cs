using SearchOrchestrator.Search;
using SearchOrchestrator.Server;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers search strategies beside the built-ins.</summary>
public static class StrategyRegistrationExtensions
{
    /// <summary>
    /// Registers the strategy <typeparamref name="T"/> by its <see cref="ISearchStrategy{TSelf}.Definition"/>, so
    /// requests can choose it by name (over gRPC, the contract's <c>named</c> strategy).
    /// </summary>
    public static SearchOrchestratorBuilder AddStrategy<T>(this SearchOrchestratorBuilder builder)
        where T : class, ISearchStrategy<T>
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.AddSingleton(T.Definition);
        return builder;
    }
}
