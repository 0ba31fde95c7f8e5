namespace SearchOrchestrator.Server;

/// <summary>Returned by <c>AddSearchOrchestrator</c>, for the registrations that build on it.</summary>
public sealed class SearchOrchestratorBuilder
{
    internal SearchOrchestratorBuilder(Microsoft.Extensions.DependencyInjection.IServiceCollection services) => Services = services;

    /// <summary>The service collection SearchOrchestrator was added to.</summary>
    public Microsoft.Extensions.DependencyInjection.IServiceCollection Services { get; }
}
