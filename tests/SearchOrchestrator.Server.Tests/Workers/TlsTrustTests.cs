using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using SearchOrchestrator.Server.Workers;
using SearchOrchestrator.Tests;
using SearchOrchestrator.Workers;

namespace SearchOrchestrator.Server.Tests.Workers;

/// <summary>
/// README's "TLS with a private CA", followed: a CA made here, a worker certificate it signs that names the worker's
/// service (not the address it is dialled at, as for pod IPs), and an orchestrator that trusts it through
/// <c>Workers:Tls:CaBundlePath</c> and <c>Workers:Tls:ServerName</c>.
/// </summary>
public sealed class TlsTrustTests : IAsyncLifetime
{
    private const string ServiceName = "searchorch-worker.searchorch.svc";
    private readonly DirectoryInfo _folder = Directory.CreateTempSubdirectory("searchorch-ca-");
    private Microsoft.AspNetCore.Builder.WebApplication? _worker;

    private string CaBundle => Path.Combine(_folder.FullName, "ca.crt");

    private string WorkerUrl => _worker!.Urls.First();

    public async Task InitializeAsync()
    {
        var now = DateTimeOffset.UtcNow;
        using var caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var caRequest = new CertificateRequest("CN=searchorch test CA", caKey, HashAlgorithmName.SHA256);
        caRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        caRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        using var ca = caRequest.CreateSelfSigned(now.AddMinutes(-5), now.AddDays(2));

        using var workerKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var workerRequest = new CertificateRequest($"CN={ServiceName}", workerKey, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        san.AddDnsName(ServiceName);
        workerRequest.CertificateExtensions.Add(san.Build());
        workerRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, false));
        workerRequest.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
        using var workerCertificate = workerRequest.Create(ca, now.AddMinutes(-5), now.AddDays(1), [1, 2, 3, 4]);

        await File.WriteAllTextAsync(CaBundle, ca.ExportCertificatePem());
        var certPath = Path.Combine(_folder.FullName, "tls.crt");
        var keyPath = Path.Combine(_folder.FullName, "tls.key");
        await File.WriteAllTextAsync(certPath, workerCertificate.ExportCertificatePem());
        await File.WriteAllTextAsync(keyPath, workerKey.ExportPkcs8PrivateKeyPem());

        _worker = SearchOrchestratorWorker.Build(
        [
            "--urls", "https://127.0.0.1:0", "--models", RepositoryPaths.Models, "--Models:ExecutionProvider", "cpu", "--Models:WarmUp", "false",
            "--Serving:CertificatePath", certPath, "--Serving:CertificateKeyPath", keyPath, "--Logging:LogLevel:Default", "Warning",
        ]);
        await _worker.StartAsync();
    }

    public async Task DisposeAsync()
    {
        await _worker!.StopAsync();
        await _worker.DisposeAsync();
        _folder.Delete(recursive: true);
    }

    [Fact]
    public async Task Describe_CaBundleAndServerName_TrustsThePrivateCa()
    {
        await using var client = new GrpcWorkerClient(WorkerUrl, "s", null, TlsTrust.CreateHandler(new TlsTrustOptions { CaBundlePath = CaBundle, ServerName = ServiceName }));

        var description = (await client.DescribeAsync()).Value;

        Assert.Contains(description.Models, m => m.Name == "counting");
    }

    [Theory]
    [InlineData(false, false)] // the system's store: UntrustedRoot, as before the setting existed
    [InlineData(true, false)] // the CA, but the certificate does not name 127.0.0.1
    [InlineData(false, true)] // the right name, but no trust in the CA
    public async Task Describe_WithoutBothSettings_IsRefused(bool caBundle, bool serverName)
    {
        var trust = new TlsTrustOptions { CaBundlePath = caBundle ? CaBundle : null, ServerName = serverName ? ServiceName : null };
        await using var client = new GrpcWorkerClient(WorkerUrl, "s", null, TlsTrust.CreateHandler(trust));

        var ex = await Assert.ThrowsAsync<WorkerUnavailableException>(() => client.DescribeAsync());

        Assert.Contains("SSL", ex.Message, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public void Validate_MissingBundleAndBadName_NamesBothSettings()
    {
        var failures = new TlsTrustOptions { CaBundlePath = "/nonexistent/ca.crt", ServerName = "not a name" }.Validate("Workers:Tls");

        Assert.Equal(
        [
            "Workers:Tls:CaBundlePath: the file '/nonexistent/ca.crt' does not exist.",
            "Workers:Tls:ServerName: 'not a name' is not a host name.",
        ], failures);
    }
}
