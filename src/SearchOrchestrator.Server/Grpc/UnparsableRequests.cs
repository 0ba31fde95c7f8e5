using System.Buffers.Binary;
using System.Globalization;
using Google.Protobuf;
using Google.Protobuf.Reflection;
using Grpc.Core;
using Microsoft.AspNetCore.Http;

namespace SearchOrchestrator.Server.Grpc;

/// <summary>
/// Answers a call whose request message cannot be parsed (a field claiming more bytes than the message holds, a bad
/// tag) with INVALID_ARGUMENT "cannot parse the request" before gRPC's handler sees it. grpc-dotnet parses the request
/// outside the service and its interceptors, so it would answer UNKNOWN "Exception was thrown by handler" and log an
/// error, as if the server had failed. Only the given services' methods whose request is one message are checked; their
/// bodies are buffered to do so, which is why it guards the search service (small requests) and not tensor traffic.
/// </summary>
internal static class UnparsableRequests
{
    // gRPC frames each message with a 1-byte compression flag and a 4-byte big-endian length.
    private const int FramePrefix = 5;

    /// <summary>The middleware for <paramref name="services"/>; bodies over <paramref name="maxMessageSize"/> are left to gRPC.</summary>
    public static Func<HttpContext, RequestDelegate, Task> Guard(int maxMessageSize, params ServiceDescriptor[] services)
    {
        var parsers = services
            .SelectMany(s => s.Methods.Where(m => !m.IsClientStreaming).Select(m => (Path: $"/{s.FullName}/{m.Name}", Input: m.InputType)))
            .ToDictionary(p => p.Path, p => p.Input, StringComparer.Ordinal);
        return async (context, next) =>
        {
            if (parsers.TryGetValue(context.Request.Path.Value ?? string.Empty, out var input)
                && await ParseErrorAsync(context.Request, input.Parser, maxMessageSize).ConfigureAwait(false) is { } error)
            {
                // A trailers-only response: the status travels in the headers, with no message.
                context.Response.ContentType = "application/grpc";
                context.Response.Headers["grpc-status"] = ((int)StatusCode.InvalidArgument).ToString(CultureInfo.InvariantCulture);
                context.Response.Headers["grpc-message"] = Uri.EscapeDataString($"cannot parse the request: {error} Send a {input.FullName} encoded as the proto declares it.");
                return;
            }

            await next(context).ConfigureAwait(false);
        };
    }

    /// <summary>Why the one message in the body does not parse; null when it does, or when it is not one plain frame.</summary>
    private static async Task<string?> ParseErrorAsync(HttpRequest request, MessageParser parser, int maxMessageSize)
    {
        request.EnableBuffering();
        var limit = maxMessageSize + FramePrefix;
        var body = new byte[Math.Min(limit + 1, 64 * 1024)];
        var length = 0;
        int read;
        while ((read = await request.Body.ReadAsync(body.AsMemory(length), request.HttpContext.RequestAborted).ConfigureAwait(false)) > 0)
        {
            length += read;
            if (length == body.Length)
            {
                if (length > limit)
                {
                    break;
                }

                Array.Resize(ref body, Math.Min(limit + 1, body.Length * 2));
            }
        }

        request.Body.Position = 0;
        var frame = body.AsSpan(0, length);
        // Compressed, several frames, too large or cut short: gRPC itself answers those with a proper status.
        if (length > limit || frame.Length < FramePrefix || frame[0] != 0 || BinaryPrimitives.ReadUInt32BigEndian(frame[1..FramePrefix]) != frame.Length - FramePrefix)
        {
            return null;
        }

        try
        {
            parser.ParseFrom(frame[FramePrefix..]);
            return null;
        }
        catch (InvalidProtocolBufferException ex)
        {
            return ex.Message;
        }
    }
}
