using Grpc.Core;
using Microsoft.Extensions.Time.Testing;
using SearchOrchestrator.Server.Grpc;

namespace SearchOrchestrator.Server.Tests.Grpc;

public sealed class CallCancellationTests
{
    private static readonly DateTimeOffset Start = new(2026, 1, 1, 12, 0, 0, TimeSpan.Zero);

    [Fact]
    public void Token_DeadlinePasses_FiresWithCauseDeadline()
    {
        var time = new FakeTimeProvider(Start);
        using var call = new CancellationTokenSource();
        using var shutdown = new CancellationTokenSource();
        using var cancellation = new CallCancellation(call.Token, Start.UtcDateTime.AddSeconds(5), shutdown.Token, time);

        time.Advance(TimeSpan.FromSeconds(4));
        Assert.False(cancellation.Token.IsCancellationRequested);
        time.Advance(TimeSpan.FromSeconds(1));

        Assert.True(cancellation.Token.IsCancellationRequested);
        Assert.Equal(CancellationCause.Deadline, cancellation.Cause);
        call.Cancel(); // later firings do not change the cause
        Assert.Equal(CancellationCause.Deadline, cancellation.Cause);
    }

    [Theory]
    [InlineData(true, (int)CancellationCause.Caller)]
    [InlineData(false, (int)CancellationCause.Shutdown)]
    public void Token_CallOrShutdownFires_RecordsWhich(bool caller, int expected)
    {
        var time = new FakeTimeProvider(Start);
        using var call = new CancellationTokenSource();
        using var shutdown = new CancellationTokenSource();
        using var cancellation = new CallCancellation(call.Token, DateTime.MaxValue, shutdown.Token, time);
        Assert.Equal(CancellationCause.None, cancellation.Cause);

        (caller ? call : shutdown).Cancel();

        Assert.True(cancellation.Token.IsCancellationRequested);
        Assert.Equal((CancellationCause)expected, cancellation.Cause);
    }

    [Fact]
    public void Token_DeadlineAlreadyPast_IsCancelledFromTheStart()
    {
        var time = new FakeTimeProvider(Start);
        using var cancellation = new CallCancellation(CancellationToken.None, Start.UtcDateTime.AddSeconds(-1), CancellationToken.None, time);

        Assert.True(cancellation.Token.IsCancellationRequested);
        Assert.Equal(CancellationCause.Deadline, cancellation.Cause);
    }

    [Theory]
    [InlineData((int)CancellationCause.Deadline, StatusCode.DeadlineExceeded)]
    [InlineData((int)CancellationCause.Caller, StatusCode.Cancelled)]
    [InlineData((int)CancellationCause.Shutdown, StatusCode.Unavailable)]
    public void ErrorStatusFor_Cancelled_SaysWhatFired(int cause, StatusCode expected)
    {
        Assert.Equal(expected, ErrorStatus.For(new OperationCanceledException(), (CancellationCause)cause)?.StatusCode);
    }

    [Fact]
    public void ErrorStatusFor_CancelledWithoutACause_IsLeftUnmapped()
    {
        Assert.Null(ErrorStatus.For(new OperationCanceledException(), CancellationCause.None));
    }

    [Fact]
    public void ErrorStatusFor_InvalidRequest_NamesTheField()
    {
        var status = ErrorStatus.For(new InvalidRequestException("steps", "must be positive."), CancellationCause.None);

        Assert.Equal(new Status(StatusCode.InvalidArgument, "steps: must be positive."), status);
    }
}
