using System.Net;
using System.Net.Sockets;
using Grpc.Health.V1;
using Grpc.Net.Client;
using SearchOrchestrator.Cli.Tests.Workers;

namespace SearchOrchestrator.Cli.Tests.Commands;

/// <summary><c>searchorch serve</c> and <c>worker</c> as processes: side by side on one host, and start-up failures in one line.</summary>
public sealed class ServeCommandTests
{
    [Fact]
    public async Task ServeAndWorker_TwoOfEachOnOneHost_EachAnswersGrpcAndMetricsOnItsOwnPort()
    {
        // Defaults plus --urls (the helper passes --urls http://127.0.0.1:0): nothing else listens on a fixed port.
        var started = await Task.WhenAll(WorkerProcess.StartServeAsync(), WorkerProcess.StartServeAsync(), WorkerProcess.StartAsync(), WorkerProcess.StartAsync());
        try
        {
            using var http = new HttpClient();
            foreach (var service in started)
            {
                using var channel = GrpcChannel.ForAddress(service.Url);
                var health = await new Health.HealthClient(channel).CheckAsync(new HealthCheckRequest());
                using var metrics = await http.GetAsync(new Uri(new Uri(service.Url), "/metrics"));

                Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, health.Status);
                Assert.Equal(HttpStatusCode.OK, metrics.StatusCode);
                Assert.Equal("text/plain", metrics.Content.Headers.ContentType?.MediaType);
            }

            Assert.Equal(4, started.Select(s => new Uri(s.Url).Port).Distinct().Count());
        }
        finally
        {
            foreach (var service in started)
            {
                await service.DisposeAsync();
            }
        }
    }

    [Theory]
    [InlineData("serve")]
    [InlineData("worker")]
    public async Task Start_PortInUse_FailsWithOneLineNamingTheAddress(string command)
    {
        using var occupant = new TcpListener(IPAddress.Loopback, 0);
        occupant.Start();
        var url = $"http://127.0.0.1:{((IPEndPoint)occupant.LocalEndpoint).Port}";

        var (exit, stdout, stderr) = await SearchorchProcess.RunAsync(command, "--urls", url, "--Logging:LogLevel:Default", "Warning");

        Assert.Equal(2, exit);
        Assert.Equal($"searchorch: error: Failed to bind to address {url}: address already in use.", stderr.TrimEnd('\n'));
        Assert.DoesNotContain("   at ", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Serve_UnreadableCertificate_FailsWithOneLineNamingTheSetting()
    {
        var (exit, stdout, stderr) = await SearchorchProcess.RunAsync("serve", "--urls", "https://127.0.0.1:0",
            "--Serving:CertificatePath", "/nonexistent/tls.crt", "--Serving:CertificateKeyPath", "/nonexistent/tls.key");

        Assert.Equal(2, exit);
        var line = Assert.Single(stderr.TrimEnd('\n').Split('\n'));
        Assert.StartsWith("searchorch: error: Serving:CertificatePath / CertificateKeyPath: cannot load the TLS certificate '/nonexistent/tls.crt': ", line);
        Assert.DoesNotContain("   at ", stdout, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("serve", "--Serving:MaxSteps", "many", "searchorch: error: Failed to convert configuration value 'many' at 'Serving:MaxSteps' to type 'System.Int32'.")]
    [InlineData("serve", "--Serving:DrainTimeout", "-00:00:01", "searchorch: error: Serving:DrainTimeout must not be negative, got -00:00:01.")]
    [InlineData("worker", "--Worker:MaxResidentBytes", "lots", "searchorch: error: Failed to convert configuration value 'lots' at 'Worker:MaxResidentBytes' to type 'System.Int64'.")]
    public async Task Start_BadSettingValue_FailsWithOneLineNamingTheSetting(string command, string key, string value, string expected)
    {
        var (exit, stdout, stderr) = await SearchorchProcess.RunAsync(command, "--urls", "http://127.0.0.1:0", "--Logging:LogLevel:Default", "Warning", key, value);

        Assert.Equal(2, exit);
        Assert.Equal(expected, stderr.TrimEnd('\n'));
        Assert.DoesNotContain("   at ", stdout, StringComparison.Ordinal);
    }
}
