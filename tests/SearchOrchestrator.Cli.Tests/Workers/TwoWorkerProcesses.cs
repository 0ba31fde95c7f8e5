using SearchOrchestrator.Onnx.Manifests;
using SearchOrchestrator.Onnx.Repository;
using SearchOrchestrator.Onnx.Runtime;
using SearchOrchestrator.Search;
using SearchOrchestrator.Tests;
using SearchOrchestrator.Verifiers;

namespace SearchOrchestrator.Cli.Tests.Workers;

/// <summary>
/// Two fresh <c>searchorch worker</c> processes per test (tests kill and freeze them) sharing a secret, and this
/// process's own repository and catalog to compare against.
/// </summary>
public abstract class TwoWorkerProcesses : IAsyncLifetime
{
    protected const string Secret = "worker-test-secret-01";

    protected ModelRepository Repository { get; private set; } = null!;

    protected ModelCatalog Models { get; private set; } = null!;

    internal WorkerProcess First { get; private set; } = null!;

    internal WorkerProcess Second { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        var workers = Task.WhenAll(WorkerProcess.StartAsync("--secret", Secret), WorkerProcess.StartAsync("--secret", Secret));
        Repository = ModelRepository.Load(new ModelRepositoryOptions { Path = RepositoryPaths.Models, ExecutionProvider = "cpu" });
        Models = new ModelCatalog(Repository, [new ObjectCounter(), new SudokuVerifier()]);
        var started = await workers;
        (First, Second) = (started[0], started[1]);
    }

    public async Task DisposeAsync()
    {
        await First.DisposeAsync();
        await Second.DisposeAsync();
        Repository.Dispose();
    }

    protected ModelManifest? Manifest(string name) => Repository.Models.FirstOrDefault(m => m.Name == name && m.IsReady)?.Manifest;

    protected string? LocalHash(string name) => Manifest(name)?.Sha256;

    /// <summary>Same candidates, in the same order, with samples equal to <paramref name="tolerance"/>.</summary>
    protected static void AssertSameCandidates(SearchResult expected, SearchResult actual, double tolerance)
    {
        Assert.Equal(expected.Candidates.Select(c => c.Path), actual.Candidates.Select(c => c.Path));
        for (var i = 0; i < expected.Candidates.Count; i++)
        {
            var e = expected.Candidates[i].Sample;
            var a = actual.Candidates[i].Sample;
            Assert.Equal(e.Length, a.Length);
            var worst = e.Zip(a, (x, y) => Math.Abs(x - y)).Max();
            Assert.True(worst <= tolerance, $"candidate {i} differs by {worst}");
        }
    }
}
