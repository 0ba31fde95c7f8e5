using Grpc.Core;
using Grpc.Core.Interceptors;
using Microsoft.Extensions.Logging;
using SearchOrchestrator.Scheduling;
using SearchOrchestrator.Search;
using SearchOrchestrator.Workers;

namespace SearchOrchestrator.Server.Grpc;

/// <summary>The status code and message a caller gets for each domain error; one table for every service and adapter.</summary>
internal static class ErrorStatus
{
    /// <summary>The status for <paramref name="error"/>; null lets an unexpected error surface as Internal.</summary>
    public static Status? For(Exception error, CancellationCause cause) => error switch
    {
        RpcException e => e.Status,
        InvalidRequestException e => new Status(StatusCode.InvalidArgument, $"{e.Argument}: {e.Message}"),
        ModelNotFoundException e => new Status(StatusCode.NotFound, e.Message),
        ResidentNodeNotFoundException e => new Status(StatusCode.NotFound, e.Message),
        ResidentMemoryExhaustedException e => new Status(StatusCode.ResourceExhausted, e.Message),
        VerifierFailedException { InnerException: NoBackendException } e => new Status(StatusCode.Unavailable, e.Message),
        VerifierFailedException e => new Status(StatusCode.Internal, e.Message),
        NoBackendException e => new Status(StatusCode.Unavailable, e.Message),
        OperationCanceledException => cause switch
        {
            CancellationCause.Deadline => new Status(StatusCode.DeadlineExceeded, "the call's deadline passed before it finished; its work was stopped."),
            CancellationCause.Shutdown => new Status(StatusCode.Unavailable, "the server stopped before the call finished (its drain timeout passed); retry it."),
            CancellationCause.Caller => new Status(StatusCode.Cancelled, "the call was cancelled; its work was stopped."),
            _ => null,
        },
        _ => null,
    };
}

/// <summary>
/// The one place every gRPC service's errors become status codes (<see cref="ErrorStatus"/>), and where a call's
/// cancellation is set up: the service sees a <see cref="ServerCallContext.CancellationToken"/> that links the call,
/// its deadline and the server's shutdown (<see cref="CallCancellation"/>), and the status says which one fired.
/// Refusals are logged with the method.
/// </summary>
internal sealed class ErrorStatusInterceptor(ServerShutdown shutdown, TimeProvider time, ILogger<ErrorStatusInterceptor> logger) : Interceptor
{
    private const string HttpContextKey = "__HttpContext";

    /// <summary>The <see cref="CallCancellation"/> of a call this interceptor runs, from its context.</summary>
    public static CallCancellation? Of(ServerCallContext context) =>
        context.UserState.TryGetValue(typeof(CallCancellation), out var value) ? value as CallCancellation : null;

    public override Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation) =>
        RunAsync(context, c => continuation(request, c));

    public override Task<TResponse> ClientStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream, ServerCallContext context, ClientStreamingServerMethod<TRequest, TResponse> continuation) =>
        RunAsync(context, c => continuation(requestStream, c));

    public override Task ServerStreamingServerHandler<TRequest, TResponse>(TRequest request, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation) =>
        RunAsync(context, async c =>
        {
            await continuation(request, responseStream, c).ConfigureAwait(false);
            return true;
        });

    public override Task DuplexStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, DuplexStreamingServerMethod<TRequest, TResponse> continuation) =>
        RunAsync(context, async c =>
        {
            await continuation(requestStream, responseStream, c).ConfigureAwait(false);
            return true;
        });

    private async Task<T> RunAsync<T>(ServerCallContext context, Func<ServerCallContext, Task<T>> call)
    {
        using var cancellation = new CallCancellation(context.CancellationToken, context.Deadline, shutdown.Token, time);
        context.UserState[typeof(CallCancellation)] = cancellation;
        // grpc-dotnet finds the call's HttpContext (and its services) in this key when the context is a wrapper.
        context.UserState[HttpContextKey] = context.GetHttpContext();
        try
        {
            return await call(new LinkedCallContext(context, cancellation.Token)).ConfigureAwait(false);
        }
        catch (Exception ex) when (ErrorStatus.For(ex, cancellation.Cause) is { } status)
        {
            // A caller that went away is routine; anything else is a refusal an operator may want to see.
            ErrorStatusLog.Refused(logger, status.StatusCode == StatusCode.Cancelled ? LogLevel.Debug : LogLevel.Information, context.Method, status.StatusCode.ToString(), status.Detail);
            if (ex is RpcException)
            {
                throw;
            }

            throw new RpcException(status);
        }
    }

    /// <summary>The call's context with the linked cancellation token; everything else is the call's own.</summary>
    private sealed class LinkedCallContext(ServerCallContext inner, CancellationToken cancellationToken) : ServerCallContext
    {
        protected override string MethodCore => inner.Method;

        protected override string HostCore => inner.Host;

        protected override string PeerCore => inner.Peer;

        protected override DateTime DeadlineCore => inner.Deadline;

        protected override Metadata RequestHeadersCore => inner.RequestHeaders;

        protected override CancellationToken CancellationTokenCore => cancellationToken;

        protected override Metadata ResponseTrailersCore => inner.ResponseTrailers;

        protected override Status StatusCore
        {
            get => inner.Status;
            set => inner.Status = value;
        }

        protected override WriteOptions? WriteOptionsCore
        {
            get => inner.WriteOptions;
            set => inner.WriteOptions = value;
        }

        protected override AuthContext AuthContextCore => inner.AuthContext;

        protected override IDictionary<object, object> UserStateCore => inner.UserState;

        protected override ContextPropagationToken CreatePropagationTokenCore(ContextPropagationOptions? options) => inner.CreatePropagationToken(options);

        protected override Task WriteResponseHeadersAsyncCore(Metadata responseHeaders) => inner.WriteResponseHeadersAsync(responseHeaders);
    }
}

/// <summary>Log messages of <see cref="ErrorStatusInterceptor"/>.</summary>
internal static partial class ErrorStatusLog
{
    [LoggerMessage(EventId = 3002, Message = "{Method} refused: {Status} {Detail}")]
    public static partial void Refused(ILogger logger, LogLevel level, string method, string status, string detail);
}
