using System.Net;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using SearchOrchestrator.Server.Discovery;
using SearchOrchestrator.Server.OpenInference;
using SearchOrchestrator.Tests;

namespace SearchOrchestrator.Server.Tests.OpenInference;

public sealed class BackendRegistrationExtensionsTests
{
    private static IHost Build(Dictionary<string, string?> settings, Action<IServiceCollection>? configure = null)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>(settings)
        {
            ["Models:Path"] = RepositoryPaths.Models,
            ["Models:ExecutionProvider"] = "cpu",
        });
        builder.Services.AddLogging();
        configure?.Invoke(builder.Services);
        builder.Services.AddSearchOrchestrator().AddKServeBackends().AddDnsDiscovery();
        return builder.Build();
    }

    [Fact]
    public async Task StartAsync_BadBackendAndDiscoverySettings_FailsNamingEverySetting()
    {
        using var host = Build(new()
        {
            ["Backends:KServe:0:Endpoint"] = "triton",
            ["Backends:KServe:0:Models:counting:RemoteName"] = "counting",
            ["Discovery:Dns:Name"] = "workers.local",
            ["Discovery:Dns:Port"] = "0",
        });

        var error = await Assert.ThrowsAsync<AggregateException>(() => host.StartAsync());

        var failures = error.InnerExceptions.OfType<OptionsValidationException>().SelectMany(e => e.Failures).ToList();
        Assert.Contains("Backends:KServe:0:Endpoint: 'triton' is not an http:// or https:// address (e.g. http://triton:8001).", failures);
        Assert.Contains("Discovery:Dns:Port: must be 1 to 65535, got 0.", failures);
    }

    [Fact]
    public async Task StartAsync_GoodSettings_RunsDiscoveryWithTheRegisteredResolver()
    {
        var time = new FakeTimeProvider();
        using var host = Build(
            new()
            {
                ["Backends:KServe:0:Endpoint"] = "http://triton:8001",
                ["Backends:KServe:0:Models:counting:Version"] = "1",
                ["Discovery:Dns:Name"] = "workers.local",
                ["Discovery:Dns:Port"] = "50052",
            },
            services => services
                .AddSingleton<TimeProvider>(time)
                .AddSingleton<DnsResolver>((name, _) => Task.FromResult(name == "workers.local" ? new[] { IPAddress.Parse("10.1.0.4") } : [])));

        await host.StartAsync(); // the first resolution is part of starting
        var discovery = host.Services.GetRequiredService<DnsDiscovery>();
        var kserve = host.Services.GetRequiredService<IOptions<KServeOptions>>().Value;
        await host.StopAsync();

        Assert.Equal("https://10.1.0.4:50052", Assert.Single(discovery.Endpoints).ToString());
        Assert.Equal("1", Assert.Single(kserve.KServe).Models["counting"].Version);
    }
}
