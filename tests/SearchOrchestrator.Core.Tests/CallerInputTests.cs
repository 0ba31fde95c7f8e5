namespace SearchOrchestrator.Core.Tests;

public sealed class CallerInputTests
{
    [Fact]
    public void Quote_ShortValue_QuotesItWhole() => Assert.Equal("'seven'", CallerInput.Quote("seven"));

    [Fact]
    public void Quote_LongValue_QuotesAPrefixAndSaysHowLongItWas()
    {
        var quoted = CallerInput.Quote(new string('7', 100_000));

        Assert.Equal($"'{new string('7', CallerInput.MaxCharacters)}…' (100000 characters)", quoted);
    }

    [Fact]
    public void Quote_CutInsideASurrogatePair_KeepsThePairWhole()
    {
        var value = new string('a', CallerInput.MaxCharacters - 1) + "😀" + new string('b', 10);

        var quoted = CallerInput.Quote(value);

        Assert.Equal($"'{new string('a', CallerInput.MaxCharacters - 1)}…' ({value.Length} characters)", quoted);
    }

    [Fact]
    public void QuoteList_ShortList_ListsEveryEntry() => Assert.Equal("[3, 1, 2]", CallerInput.QuoteList([3, 1, 2]));

    [Fact]
    public void QuoteList_LongList_ListsTheFirstEntriesAndSaysHowManyItHad()
    {
        var quoted = CallerInput.QuoteList(Enumerable.Range(1, 20_000));

        Assert.Equal($"[{string.Join(", ", Enumerable.Range(1, CallerInput.MaxEntries))}, …] (20000 entries)", quoted);
    }

    [Fact]
    public void QuoteList_LongEntries_CutsEachEntry()
    {
        var quoted = CallerInput.QuoteList([new string('x', 1000), "y"]);

        Assert.Equal($"[{new string('x', CallerInput.MaxCharacters)}…, y]", quoted);
    }
}
