using Grpc.AspNetCore.Server;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace SearchOrchestrator.Server.Grpc;

/// <summary>Puts the same interceptors in front of every gRPC service a host maps.</summary>
internal static class CallInterceptors
{
    /// <summary>
    /// Runs <typeparamref name="TService"/>'s calls through <see cref="ErrorStatusInterceptor"/> (cancellation and status
    /// codes) and, unless <paramref name="secret"/> is false, <see cref="ApiKeyInterceptor"/> (the host's
    /// <see cref="SharedSecrets"/>, which must be registered).
    /// </summary>
    public static IGrpcServerBuilder AddCallInterceptors<TService>(this IGrpcServerBuilder builder, bool secret = true)
        where TService : class
    {
        builder.Services.TryAddSingleton<ServerShutdown>();
        builder.Services.TryAddSingleton<ErrorStatusInterceptor>();
        if (secret)
        {
            builder.Services.TryAddSingleton<ApiKeyInterceptor>();
        }

        return builder.AddServiceOptions<TService>(o =>
        {
            // The secret is checked first, so an unauthenticated call never reaches the service.
            if (secret)
            {
                o.Interceptors.Add<ApiKeyInterceptor>();
            }

            o.Interceptors.Add<ErrorStatusInterceptor>();
        });
    }
}
