using Microsoft.Extensions.Time.Testing;
using SearchOrchestrator.Core.Tests.TestDoubles;
using SearchOrchestrator.Links;
using SearchOrchestrator.Search;
using SearchOrchestrator.Verifiers;

namespace SearchOrchestrator.Core.Tests.Search;

public sealed class TreeLedgerTests
{
    [Fact]
    public void Record_PastTheBound_DropsTheNewestAndCountsThem()
    {
        var ledger = new TreeLedger(new SearchBudget(), new FakeTimeProvider(), new RecordingLogger<TreeLedger>(), recordEvents: true);

        for (var i = 0; i < TreeLedger.EventCapacity + 10; i++)
        {
            ledger.Record(new TreeEvent(TreeEventKind.Advanced, i, $"{i}", 1));
        }

        var (events, dropped) = ledger.TakeEvents(int.MaxValue);
        var after = ledger.TakeEvents(int.MaxValue);

        Assert.Equal(TreeLedger.EventCapacity, events.Count);
        Assert.Equal(Enumerable.Range(0, TreeLedger.EventCapacity), events.Select(e => e.Node));
        Assert.Equal(10, dropped);
        Assert.Empty(after.Events);
        Assert.Equal(0, after.Dropped);
    }

    [Fact]
    public void TakeEvents_MoreThanMax_LeavesTheRestForTheNextCall()
    {
        var ledger = new TreeLedger(new SearchBudget(), new FakeTimeProvider(), new RecordingLogger<TreeLedger>(), recordEvents: true);
        for (var i = 0; i < 10; i++)
        {
            ledger.Record(new TreeEvent(TreeEventKind.Forked, i, $"0/{i}", 0, Parent: 0));
        }

        var first = ledger.TakeEvents(4);
        var second = ledger.TakeEvents(100);

        Assert.Equal([0, 1, 2, 3], first.Events.Select(e => e.Node));
        Assert.Equal([4, 5, 6, 7, 8, 9], second.Events.Select(e => e.Node));
        Assert.Equal(0, first.Dropped + second.Dropped);
    }

    [Fact]
    public void Record_SearchThatKeepsNoEvents_HasNoneToTake()
    {
        var ledger = new TreeLedger(new SearchBudget(), new FakeTimeProvider(), new RecordingLogger<TreeLedger>(), recordEvents: false);

        ledger.Record(new TreeEvent(TreeEventKind.Pruned, 0, "0", 3));

        Assert.Empty(ledger.TakeEvents(10).Events);
    }

    [Fact]
    public void TryReserveNfe_PastTheBudget_IsRefusedAndTheRefusalIsLoggedWithItsLimit()
    {
        var logger = new RecordingLogger<TreeLedger>();
        var ledger = new TreeLedger(new SearchBudget { MaxNfe = 10 }, new FakeTimeProvider(), logger, recordEvents: false);

        var first = ledger.TryReserveNfe(8);
        var second = ledger.TryReserveNfe(3);
        ledger.Refuse("advance", 1);

        Assert.True(first);
        Assert.False(second);
        Assert.True(ledger.BudgetLimited);
        var entry = Assert.Single(logger.Entries);
        Assert.Equal(5101, entry.Id);
        Assert.Equal("Search budget refused advance for 1 node(s): budget.max_nfe is reached", entry.Message);
    }

    [Fact]
    public void TryReserveVerification_AfterTheWallTime_IsRefusedAndLoggedAsTheWallTime()
    {
        var time = new FakeTimeProvider();
        var logger = new RecordingLogger<TreeLedger>();
        var ledger = new TreeLedger(new SearchBudget { MaxWallTime = TimeSpan.FromSeconds(1) }, time, logger, recordEvents: false);
        ledger.AddVerifier("a", VerifierKinds.Code);
        ledger.AddVerifier("b", VerifierKinds.Code);

        var before = ledger.TryReserveVerification(["a", "b"], 0);
        time.Advance(TimeSpan.FromSeconds(1));
        var after = ledger.TryReserveVerification(["a", "b"], 0);
        ledger.Refuse("verify", 3);

        Assert.Null(before);
        Assert.Equal("verify", after);
        Assert.Equal(2, ledger.VerifierCalls);
        Assert.Equal("Search budget refused verify for 3 node(s): budget.max_wall_time is reached", Assert.Single(logger.Entries).Message);
    }

    [Fact]
    public void Account_VerifierCallsAndTransfers_CountedPerVerifierInTheRequestOrder()
    {
        var ledger = new TreeLedger(new SearchBudget { MaxVerifierCalls = 5 }, new FakeTimeProvider(), new RecordingLogger<TreeLedger>(), recordEvents: false);
        ledger.AddVerifier("remote", VerifierKinds.KServe);
        ledger.AddVerifier("local", VerifierKinds.Onnx);

        Assert.Null(ledger.TryReserveVerification(["remote", "local"], 0));
        Assert.Null(ledger.TryReserveVerification(["remote", "local"], 0));
        Assert.Null(ledger.TryReserveVerification(["remote"], 0));
        Assert.Equal("verify", ledger.TryReserveVerification(["remote", "local"], 0));
        ledger.RecordVerifierTransfer("remote", new Transfer(100, 20, TimeSpan.FromMilliseconds(3)));
        ledger.RecordVerifierTransfer("remote", new Transfer(101, 21, TimeSpan.FromMilliseconds(4)));
        ledger.RecordVerifierTransfer("local", default);
        var account = ledger.Account(0);

        Assert.Equal(5, account.VerifierCalls);
        Assert.Equal(
            [new VerifierCost("remote", VerifierKinds.KServe, 3, 201, 41, TimeSpan.FromMilliseconds(7)), new VerifierCost("local", VerifierKinds.Onnx, 2, 0, 0, TimeSpan.Zero)],
            account.Verifiers);
    }

    [Fact]
    public void LeaveOut_TwiceForOneVerifier_KeepsTheFirstReasonAndLogsOnce()
    {
        var logger = new RecordingLogger<TreeLedger>();
        var ledger = new TreeLedger(new SearchBudget(), new FakeTimeProvider(), logger, recordEvents: false);

        var first = ledger.LeaveOut("py", "verifier 'py' failed: down");
        var second = ledger.LeaveOut("py", "verifier 'py' failed: again");

        Assert.True(first);
        Assert.False(second);
        Assert.True(ledger.IsLeftOut("py"));
        Assert.False(ledger.IsLeftOut("other"));
        Assert.Equal([new LeftOutVerifier("py", "verifier 'py' failed: down")], ledger.VerifiersLeftOut);
        var entry = Assert.Single(logger.Entries);
        Assert.Equal(5105, entry.Id);
    }
}
