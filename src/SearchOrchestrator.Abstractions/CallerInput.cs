using System.Globalization;

namespace SearchOrchestrator;

/// <summary>
/// How an error message quotes what a caller sent: at most a short prefix of a value (and how long it was), at most
/// the first entries of a list (and how many it had). An echoed 100,000-character condition would otherwise travel
/// back in the status message, whose HTTP/2 header a standard client may refuse to read at all.
/// </summary>
public static class CallerInput
{
    /// <summary>Most characters of one value an error message quotes.</summary>
    public const int MaxCharacters = 64;

    /// <summary>Most entries of a list an error message quotes.</summary>
    public const int MaxEntries = 16;

    /// <summary><c>'value'</c>, or <c>'its first 64 characters…' (N characters)</c> when longer.</summary>
    public static string Quote(string? value)
    {
        value ??= string.Empty;
        return value.Length <= MaxCharacters
            ? $"'{value}'"
            : string.Create(CultureInfo.InvariantCulture, $"'{Prefix(value)}…' ({value.Length} characters)");
    }

    /// <summary><c>[a, b, c]</c>, or <c>[its first 16 entries, …] (N entries)</c> when longer; each entry is cut as <see cref="Quote"/> cuts.</summary>
    public static string QuoteList<T>(IEnumerable<T> values)
    {
        ArgumentNullException.ThrowIfNull(values);
        var entries = values.Select(v => Convert.ToString(v, CultureInfo.InvariantCulture) ?? string.Empty).ToList();
        var shown = string.Join(", ", entries.Take(MaxEntries).Select(e => e.Length <= MaxCharacters ? e : $"{Prefix(e)}…"));
        return entries.Count <= MaxEntries
            ? $"[{shown}]"
            : string.Create(CultureInfo.InvariantCulture, $"[{shown}, …] ({entries.Count} entries)");
    }

    // Never split a surrogate pair: the prefix must stay valid UTF-16.
    private static string Prefix(string value) =>
        value[..(char.IsHighSurrogate(value[MaxCharacters - 1]) ? MaxCharacters - 1 : MaxCharacters)];
}
