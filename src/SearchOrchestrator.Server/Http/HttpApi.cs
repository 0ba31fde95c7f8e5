using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.OpenApi.Models;

namespace SearchOrchestrator.Server.Http;

/// <summary>
/// The search service over HTTP/JSON: gRPC JSON transcoding maps each RPC to the route in its <c>google.api.http</c>
/// option (protos/search.proto), through the same service class, interceptors (API keys) and caps as gRPC; this
/// publishes the OpenAPI document of those routes.
/// </summary>
internal static class HttpApi
{
    /// <summary>Where the OpenAPI document is served.</summary>
    public const string OpenApiPath = "/openapi/v1.json";

    public static void AddOpenApiDocument(IServiceCollection services)
    {
        services.AddGrpcSwagger();
        services.AddSwaggerGen(o =>
        {
            o.SwaggerDoc("v1", new OpenApiInfo
            {
                Title = "SearchOrchestrator",
                Version = "v1",
                Description = "Searched generations over HTTP/JSON: the searchorchestrator.v1.Search gRPC service, transcoded. Errors carry the HTTP status of their gRPC status and a google.rpc.Status body.",
            });
            // The proto comments reach the C# stubs as XML docs; the document carries them as descriptions.
            var xml = Path.Combine(AppContext.BaseDirectory, "SearchOrchestrator.Server.xml");
            if (File.Exists(xml))
            {
                o.IncludeGrpcXmlComments(xml, includeControllerXmlComments: true);
            }
        });
    }

    public static void MapOpenApiDocument(WebApplication app) => app.UseSwagger(o => o.RouteTemplate = "openapi/{documentName}.json");
}
