using System.Text.Json.Nodes;
using SearchOrchestrator.Tests;

namespace SearchOrchestrator.Onnx.Tests;

/// <summary>A throw-away model repository holding copies of shipped models, for tests that break them.</summary>
internal sealed class TemporaryRepository : IDisposable
{
    public TemporaryRepository(params string[] models)
    {
        Path = Directory.CreateTempSubdirectory("searchorch-models-").FullName;
        foreach (var model in models)
        {
            var target = Directory.CreateDirectory(System.IO.Path.Combine(Path, model)).FullName;
            foreach (var file in new[] { "model.json", "model.onnx" })
            {
                File.Copy(System.IO.Path.Combine(RepositoryPaths.Models, model, file), System.IO.Path.Combine(target, file));
            }
        }
    }

    public string Path { get; }

    public string ManifestPath(string model) => System.IO.Path.Combine(Path, model, "model.json");

    /// <summary>Rewrites a copied manifest.</summary>
    public void EditManifest(string model, Action<JsonObject> edit)
    {
        var json = JsonNode.Parse(File.ReadAllText(ManifestPath(model)))!.AsObject();
        edit(json);
        File.WriteAllText(ManifestPath(model), json.ToJsonString());
    }

    public void Dispose() => Directory.Delete(Path, recursive: true);
}
