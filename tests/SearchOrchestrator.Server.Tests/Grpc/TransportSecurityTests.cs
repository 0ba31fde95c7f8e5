using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Grpc.Net.Client;
using SearchOrchestrator.Protos.V1;
using SearchOrchestrator.Tests;
using SearchClient = SearchOrchestrator.Protos.V1.Search.SearchClient;

namespace SearchOrchestrator.Server.Tests.Grpc;

public sealed class TransportSecurityTests : IDisposable
{
    private readonly DirectoryInfo _folder = Directory.CreateTempSubdirectory("searchorch-tls-");

    public void Dispose() => _folder.Delete(recursive: true);

    private static string[] Arguments(params string[] extra) =>
    [
        "--Models:Path", RepositoryPaths.Models,
        "--Models:ExecutionProvider", "cpu",
        "--Logging:LogLevel:Default", "Warning",
        .. extra,
    ];

    [Fact]
    public async Task Serve_WithACertificate_AnswersOverTls()
    {
        using var key = RSA.Create(2048);
        var request = new CertificateRequest("CN=127.0.0.1", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var san = new SubjectAlternativeNameBuilder();
        san.AddIpAddress(System.Net.IPAddress.Loopback);
        request.CertificateExtensions.Add(san.Build());
        using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1));
        var certPath = Path.Combine(_folder.FullName, "server.crt");
        var keyPath = Path.Combine(_folder.FullName, "server.key");
        File.WriteAllText(certPath, certificate.ExportCertificatePem());
        File.WriteAllText(keyPath, key.ExportPkcs8PrivateKeyPem());

        await using var app = SearchOrchestratorServer.Build(Arguments("--urls", "https://127.0.0.1:0", "--Serving:CertificatePath", certPath, "--Serving:CertificateKeyPath", keyPath));
        await app.StartAsync();
        using var handler = new HttpClientHandler
        {
            // Trust exactly the certificate this test made.
            ServerCertificateCustomValidationCallback = (_, presented, _, _) => presented?.Thumbprint == certificate.Thumbprint,
        };
        using var channel = GrpcChannel.ForAddress(app.Urls.First(), new GrpcChannelOptions { HttpHandler = handler });

        var response = await new SearchClient(channel).GenerateAsync(new GenerateRequest { Model = "counting", Condition = "2", Steps = 4 });

        Assert.StartsWith("https://", app.Urls.First());
        Assert.Equal(4, response.Cost.Nfe);
        await app.StopAsync();
    }

    [Fact]
    public void Build_PlaintextBeyondLoopback_IsRefusedNamingTheSettings()
    {
        var ex = Assert.Throws<InvalidOperationException>(() => SearchOrchestratorServer.Build(Arguments("--urls", "http://0.0.0.0:0")));

        Assert.Contains("Serving:AllowPlaintextRemote", ex.Message);
        Assert.Contains("Serving:CertificatePath", ex.Message);
    }

    [Fact]
    public void Build_HttpsWithoutACertificate_IsRefused()
    {
        var ex = Assert.Throws<InvalidOperationException>(() => SearchOrchestratorServer.Build(Arguments("--urls", "https://127.0.0.1:0")));

        Assert.Contains("no certificate is configured", ex.Message);
    }
}
