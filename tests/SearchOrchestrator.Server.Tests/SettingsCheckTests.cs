using SearchOrchestrator.Tests;

namespace SearchOrchestrator.Server.Tests;

public sealed class SettingsCheckTests : IDisposable
{
    private readonly DirectoryInfo _secrets = Directory.CreateTempSubdirectory("searchorch-secrets-");

    public void Dispose() => _secrets.Delete(recursive: true);

    private static string[] Arguments(params string[] extra) =>
        ["--urls", "http://127.0.0.1:0", "--Models:Path", RepositoryPaths.Models, .. extra];

    [Theory]
    [InlineData("--Serving:MaxStep", "5", "unknown setting: --Serving:MaxStep (did you mean --Serving:MaxSteps?).")]
    [InlineData("--Servng:MaxSteps", "5", "unknown setting: --Servng:MaxSteps (did you mean --Serving:MaxSteps?).")]
    [InlineData("--Workers:Tls:CaBundle", "x", "unknown setting: --Workers:Tls:CaBundle.")]
    [InlineData("--bogus-flag", "1", "unknown setting: --bogus-flag.")]
    public void Build_UnknownSetting_IsRefusedNamingIt(string key, string value, string expected)
    {
        var ex = Assert.Throws<InvalidOperationException>(() => SearchOrchestratorServer.Build(Arguments(key, value)));

        Assert.StartsWith(expected, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Build_NestedListAndDictionarySettings_AreKnown()
    {
        await using var app = SearchOrchestratorServer.Build(Arguments(
            "--Workers:Endpoints:0", "https://worker-0:50061", "--Workers:Tls:ServerName", "worker.svc",
            "--Auth:ApiKeys:0:Name", "ci", "--Logging:LogLevel:Grpc", "Warning"));

        Assert.Equal("worker.svc", app.Configuration["Workers:Tls:ServerName"]);
    }

    [Fact]
    public async Task Build_Defaults_RankBelowTheCommandLine()
    {
        var defaults = new Dictionary<string, string?> { ["Models:Path"] = "/from-defaults", ["Batching:MaxBatchSize"] = "7" };

        await using var app = SearchOrchestratorServer.Build(Arguments(), defaults);

        Assert.Equal(RepositoryPaths.Models, app.Configuration["Models:Path"]);
        Assert.Equal("7", app.Configuration["Batching:MaxBatchSize"]);
    }

    [Fact]
    public async Task Build_SecretFiles_AreReadBelowTheCommandLine()
    {
        await File.WriteAllTextAsync(Path.Combine(_secrets.FullName, "Worker__Secret"), "from-file\n");
        await File.WriteAllTextAsync(Path.Combine(_secrets.FullName, "Worker__Advertise"), "https://worker-0:50061");

        await using var app = SearchOrchestratorWorker.Build(
            ["--urls", "http://127.0.0.1:0", "--Models:Path", RepositoryPaths.Models, "--Secrets:Path", _secrets.FullName, "--Worker:Advertise", "https://from-command-line:50061"]);

        Assert.Equal("from-file", app.Configuration["Worker:Secret"]);
        Assert.Equal("https://from-command-line:50061", app.Configuration["Worker:Advertise"]);
    }

    [Fact]
    public void Build_MisspeltSecretFile_IsRefusedNamingIt()
    {
        File.WriteAllText(Path.Combine(_secrets.FullName, "Worker__Secrte"), "x");

        var ex = Assert.Throws<InvalidOperationException>(() => SearchOrchestratorWorker.Build(["--urls", "http://127.0.0.1:0", "--Secrets:Path", _secrets.FullName]));

        Assert.StartsWith("unknown setting: Worker:Secrte in the secret files (Secrets:Path) (did you mean Worker:Secret?).", ex.Message, StringComparison.Ordinal);
    }
}
