using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.FileProviders;

namespace SearchOrchestrator.Server.Http;

/// <summary>
/// The search-tree viewer: static files embedded in this assembly (wwwroot/viewer, plain HTML, CSS and JavaScript, no
/// build step) that start a search through the HTTP/JSON API and draw its tree live from the stream.
/// </summary>
internal static class SearchTreeViewer
{
    /// <summary>Where the viewer is served; <c>/</c> redirects here.</summary>
    public const string Path = "/viewer/";

    public static void Map(WebApplication app)
    {
        var files = new ManifestEmbeddedFileProvider(typeof(SearchTreeViewer).Assembly, "wwwroot/viewer");
        var requestPath = new PathString(Path.TrimEnd('/'));
        app.UseDefaultFiles(new DefaultFilesOptions { FileProvider = files, RequestPath = requestPath });
        app.UseStaticFiles(new StaticFileOptions { FileProvider = files, RequestPath = requestPath });
        app.MapGet("/", () => Results.Redirect(Path)).ExcludeFromDescription();
    }
}
