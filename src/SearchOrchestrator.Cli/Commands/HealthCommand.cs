using System.CommandLine;
using Grpc.Core;
using Grpc.Health.V1;
using Grpc.Net.Client;

namespace SearchOrchestrator.Cli.Commands;

/// <summary>
/// <c>searchorch health</c>: asks a running serve or worker for its gRPC health (<c>grpc.health.v1</c>) and exits 0
/// when it is SERVING, 1 otherwise (with the reason) — the container's HEALTHCHECK and a Kubernetes exec probe. With no
/// address it checks this machine's own server at the port <c>ASPNETCORE_URLS</c> names (default 50051); on loopback
/// the server's certificate is not checked (it is this machine's own process).
/// </summary>
internal static class HealthCommand
{
    public static Command Create()
    {
        var url = new Argument<string?>("url") { Description = "The server to check (default: this machine's, from ASPNETCORE_URLS, else http://127.0.0.1:50051).", Arity = ArgumentArity.ZeroOrOne };
        var timeout = new Option<double>("--timeout") { Description = "Seconds to wait for the answer.", DefaultValueFactory = _ => 5 };
        var command = new Command("health", "Check a running serve or worker: exit 0 when it is SERVING, 1 otherwise (for HEALTHCHECK and exec probes).") { url, timeout };
        command.SetAction((parse, cancellationToken) => CommandErrors.RunAsync(async () =>
        {
            var target = parse.GetValue(url) ?? Local(Environment.GetEnvironmentVariable("ASPNETCORE_URLS"));
            if (!Uri.TryCreate(target, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps))
            {
                throw new InvalidRequestException("url", $"url must be an http:// or https:// address, got '{target}'.");
            }

            using var handler = new SocketsHttpHandler();
            if (uri.IsLoopback)
            {
                handler.SslOptions.RemoteCertificateValidationCallback = (_, _, _, _) => true;
            }

            using var channel = GrpcChannel.ForAddress(uri, new GrpcChannelOptions { HttpHandler = handler });
            try
            {
                var response = await new Health.HealthClient(channel).CheckAsync(new HealthCheckRequest(), deadline: DateTime.UtcNow.AddSeconds(parse.GetValue(timeout)), cancellationToken: cancellationToken);
                Console.WriteLine($"{uri}: {response.Status}");
                return response.Status == HealthCheckResponse.Types.ServingStatus.Serving ? 0 : 1;
            }
            catch (RpcException ex)
            {
                await Console.Error.WriteLineAsync($"searchorch: {uri}: {ex.StatusCode}: {ex.Status.Detail}");
                return 1;
            }
        }));
        return command;
    }

    /// <summary>This machine's address for the first of <paramref name="urls"/> (<c>+</c>, <c>*</c> and 0.0.0.0 become loopback).</summary>
    internal static string Local(string? urls)
    {
        var first = urls?.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).FirstOrDefault();
        if (first is null)
        {
            return "http://127.0.0.1:50051";
        }

        var uri = new Uri(first.Replace("://+", "://0.0.0.0", StringComparison.Ordinal).Replace("://*", "://0.0.0.0", StringComparison.Ordinal).Replace("://[::]", "://0.0.0.0", StringComparison.Ordinal));
        return $"{uri.Scheme}://127.0.0.1:{uri.Port}";
    }
}
