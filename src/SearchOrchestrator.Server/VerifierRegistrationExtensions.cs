using Microsoft.Extensions.DependencyInjection.Extensions;
using SearchOrchestrator.Server;
using SearchOrchestrator.Verifiers;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers C# verifiers in code, beside the built-ins and the plug-in folder's.</summary>
public static class VerifierRegistrationExtensions
{
    /// <summary>
    /// Serves <typeparamref name="T"/> (one instance, built by dependency injection) under its <see cref="IVerifier.Name"/>;
    /// requests choose it by that name like any other verifier.
    /// </summary>
    public static SearchOrchestratorBuilder AddVerifier<T>(this SearchOrchestratorBuilder builder)
        where T : class, IVerifier
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.TryAddEnumerable(ServiceDescriptor.Singleton<IVerifier, T>());
        return builder;
    }
}
