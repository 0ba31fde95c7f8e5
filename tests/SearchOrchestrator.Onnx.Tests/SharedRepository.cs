using SearchOrchestrator.Onnx.Repository;
using SearchOrchestrator.Onnx.Runtime;
using SearchOrchestrator.Tests;

namespace SearchOrchestrator.Onnx.Tests;

/// <summary>The shipped repository, loaded once for the tests that only read it.</summary>
public sealed class SharedRepository : IDisposable
{
    public ModelRepository Repository { get; } = ModelRepository.Load(new ModelRepositoryOptions { Path = RepositoryPaths.Models, ExecutionProvider = "cpu" });

    public void Dispose() => Repository.Dispose();
}
