using Grpc.Net.Client;
using Microsoft.AspNetCore.Builder;
using SearchOrchestrator.Tests;

namespace SearchOrchestrator.Server.Tests.Grpc;

/// <summary>The real server on a free loopback port, and a channel to it.</summary>
public class ServerFixture : IAsyncLifetime
{
    private WebApplication? _app;

    public GrpcChannel Channel { get; private set; } = null!;

    protected virtual string[] ExtraArguments => [];

    /// <summary>Adds to the server's registration before it is built.</summary>
    protected virtual void Configure(SearchOrchestratorBuilder orchestrator)
    {
    }

    /// <summary>The server's address (gRPC, HTTP/JSON, OpenAI-compatible API, viewer and metrics alike).</summary>
    public Uri Address { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        _app = SearchOrchestratorServer.Build(
        [
            "--urls", "http://127.0.0.1:0",
            "--Models:Path", RepositoryPaths.Models,
            "--Models:ExecutionProvider", "cpu",
            "--Logging:LogLevel:Default", "Warning",
            .. ExtraArguments,
        ],
        defaults: null,
        configure: Configure);
        await _app.StartAsync();
        Address = new Uri(_app.Urls.First());
        Channel = GrpcChannel.ForAddress(Address);
    }

    public async Task DisposeAsync()
    {
        Channel.Dispose();
        if (_app is not null)
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
        }
    }
}

/// <summary>A server with small caps: one search at a time, 40 steps, 1000 NFE, 64 KiB messages each way.</summary>
public sealed class LimitedServerFixture : ServerFixture
{
    protected override string[] ExtraArguments =>
    [
        "--Serving:MaxConcurrentSearches", "1",
        "--Serving:MaxSteps", "40",
        "--Serving:MaxNfePerRequest", "1000",
        "--Serving:MaxReceiveMessageSize", "65536",
        "--Serving:MaxSendMessageSize", "65536",
    ];
}

/// <summary>A server that requires API keys: alice (one search at a time) and bob (no per-key limit).</summary>
public sealed class AuthServerFixture : ServerFixture
{
    public const string Alice = "alice-secret-key-0001";
    public const string Bob = "bob-secret-key-000002";

    protected override string[] ExtraArguments =>
    [
        "--Auth:ApiKeys:0:Name", "alice", "--Auth:ApiKeys:0:Key", Alice, "--Auth:ApiKeys:0:MaxConcurrentSearches", "1",
        "--Auth:ApiKeys:1:Name", "bob", "--Auth:ApiKeys:1:Key", Bob,
    ];
}
