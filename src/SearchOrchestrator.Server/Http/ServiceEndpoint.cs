using System.Buffers;
using System.IO.Pipelines;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using OpenTelemetry.Metrics;

namespace SearchOrchestrator.Server.Http;

/// <summary>
/// The one port of <c>serve</c> and <c>worker</c>: gRPC (HTTP/2), and HTTP/1.1 for JSON, the OpenAI-compatible API,
/// the viewer and Prometheus' <c>/metrics</c>, side by side on the same address.
/// </summary>
internal static class ServiceEndpoint
{
    /// <summary>Where Prometheus scrapes the metrics (text format), on the service's own address.</summary>
    public const string MetricsPath = "/metrics";

    /// <summary>
    /// Kestrel serves HTTP/1.1 and HTTP/2 (its default) on every address. Over TLS, ALPN picks the protocol. Over
    /// plaintext Kestrel 10 would always pick HTTP/1.1 (dotnet/aspnetcore#56984), which gRPC clients cannot speak, so
    /// a connection that opens with the HTTP/2 client preface (RFC 9113 §3.4, "prior knowledge", as every gRPC client
    /// sends it) is served as HTTP/2 and any other as HTTP/1.1.
    /// </summary>
    public static void Configure(WebApplicationBuilder builder, X509Certificate2? certificate)
    {
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.ConfigureEndpointDefaults(e => e.Use(next => PriorKnowledgeHttp2.Select(next, k.Limits.RequestHeadersTimeout)));
            if (certificate is not null)
            {
                k.ConfigureHttpsDefaults(h => h.ServerCertificate = certificate);
            }
        });

        // A start that fails (busy port, a setting refused on start) surfaces as the exception StartAsync throws, which
        // searchorch reports in one line; the host's own error log of it would repeat it with a stack trace.
        builder.Logging.AddFilter("Microsoft.Extensions.Hosting.Internal.Host", level => level is >= LogLevel.Warning and not LogLevel.Error);
    }

    /// <summary>Exports the <c>SearchOrchestrator</c> meter for <see cref="MapMetrics"/>.</summary>
    public static void AddMetrics(IServiceCollection services) =>
        services.AddOpenTelemetry().WithMetrics(metrics => metrics
            .AddMeter(Diagnostics.SearchMetrics.MeterName)
            .AddPrometheusExporter(o => o.ScrapeResponseCacheDurationMilliseconds = 0));

    /// <summary>Serves the Prometheus text format at <see cref="MetricsPath"/> (open, like health: no secrets in it).</summary>
    public static void MapMetrics(WebApplication app) => app.MapPrometheusScrapingEndpoint(MetricsPath);
}

/// <summary>Chooses HTTP/2 for a plaintext connection that starts with the HTTP/2 client preface.</summary>
internal static class PriorKnowledgeHttp2
{
    // Kestrel reads the protocols of one connection from this feature (it sets it itself for SNI); the type is
    // internal, so it is found by name. Were it ever gone, connections keep the endpoint's protocols.
    private static readonly Type? ProtocolsFeature = typeof(KestrelServerOptions).Assembly.GetType("Microsoft.AspNetCore.Server.Kestrel.Core.Internal.HttpProtocolsFeature");
    private static readonly object? Http2Only = ProtocolsFeature is null ? null : Activator.CreateInstance(ProtocolsFeature, HttpProtocols.Http2);

    private static ReadOnlySpan<byte> Preface => "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"u8;

    /// <summary>True when Kestrel's per-connection protocol feature was found (so plaintext gRPC works beside HTTP/1.1).</summary>
    public static bool Available => Http2Only is not null;

    /// <summary>
    /// Connection middleware: peeks (never consumes) the first bytes and marks preface connections HTTP/2. A client
    /// that sends nothing for <paramref name="timeout"/> (Kestrel's request-headers timeout) is disconnected, as
    /// Kestrel itself would.
    /// </summary>
    public static ConnectionDelegate Select(ConnectionDelegate next, TimeSpan timeout) => async connection =>
    {
        bool? preface;
        using (var silence = CancellationTokenSource.CreateLinkedTokenSource(connection.ConnectionClosed))
        {
            silence.CancelAfter(timeout);
            preface = Available ? await StartsWithPrefaceAsync(connection.Transport.Input, silence.Token).ConfigureAwait(false) : false;
        }

        if (preface is null)
        {
            connection.Abort();
            return;
        }

        if (preface == true)
        {
            connection.Features[ProtocolsFeature!] = Http2Only;
        }

        await next(connection).ConfigureAwait(false);
    };

    /// <summary>True or false once the first bytes decide it; null when the connection sent nothing decisive in time.</summary>
    private static async Task<bool?> StartsWithPrefaceAsync(PipeReader input, CancellationToken cancellationToken)
    {
        while (true)
        {
            ReadResult result;
            try
            {
                result = await input.ReadAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return null;
            }

            var buffer = result.Buffer;
            var match = Match(buffer);
            if (match is null && !result.IsCompleted)
            {
                // Too few bytes to tell: examined all, consumed none, so the next read waits for more.
                input.AdvanceTo(buffer.Start, buffer.End);
                continue;
            }

            // Decided: consume nothing and leave nothing examined, so the HTTP layer reads these bytes at once.
            input.AdvanceTo(buffer.Start);
            return match == true;
        }
    }

    /// <summary>True or false once the bytes decide it; null while they are a proper prefix of the preface.</summary>
    private static bool? Match(ReadOnlySequence<byte> buffer)
    {
        var length = (int)Math.Min(buffer.Length, Preface.Length);
        Span<byte> head = stackalloc byte[Preface.Length];
        buffer.Slice(0, length).CopyTo(head);
        if (!head[..length].SequenceEqual(Preface[..length]))
        {
            return false;
        }

        return length == Preface.Length ? true : null;
    }
}
