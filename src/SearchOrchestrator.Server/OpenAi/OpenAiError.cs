using Grpc.Core;
using Microsoft.AspNetCore.Http;

namespace SearchOrchestrator.Server.OpenAi;

/// <summary>An error answered in OpenAI's shape: <c>{"error": {"message", "type", "param", "code"}}</c> with its HTTP status.</summary>
internal sealed class OpenAiError(int status, string type, string? param, string? code, string message) : Exception(message)
{
    public int Status { get; } = status;

    public static OpenAiError Invalid(string? param, string message) => new(StatusCodes.Status400BadRequest, "invalid_request_error", param, null, message);

    /// <summary>The OpenAI error for a gRPC status of the search service; the field a message names becomes <c>param</c>.</summary>
    public static OpenAiError From(global::Grpc.Core.Status status)
    {
        var detail = status.Detail;
        var colon = detail.IndexOf(": ", StringComparison.Ordinal);
        var field = colon > 0 && detail[..colon].All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '.') ? detail[..colon] : null;
        var param = field is null ? null : OpenAiRequest.OpenAiNames.GetValueOrDefault(field, field);
        return status.StatusCode switch
        {
            StatusCode.InvalidArgument => new(StatusCodes.Status400BadRequest, "invalid_request_error", param, null, detail),
            StatusCode.NotFound => new(StatusCodes.Status404NotFound, "invalid_request_error", param, "not_found", detail),
            StatusCode.Unauthenticated => new(StatusCodes.Status401Unauthorized, "authentication_error", null, "invalid_api_key", detail),
            StatusCode.PermissionDenied => new(StatusCodes.Status403Forbidden, "permission_error", null, null, detail),
            StatusCode.ResourceExhausted => new(StatusCodes.Status429TooManyRequests, "rate_limit_error", null, "rate_limit_exceeded", detail),
            StatusCode.DeadlineExceeded => new(StatusCodes.Status504GatewayTimeout, "timeout_error", null, "timeout", detail),
            StatusCode.Cancelled => new(499, "cancelled", null, null, detail),
            _ => new(StatusCodes.Status500InternalServerError, "server_error", null, null, detail),
        };
    }

    public IResult ToResult() => Results.Json(new { error = new { message = Message, type, param, code } }, statusCode: Status);
}
