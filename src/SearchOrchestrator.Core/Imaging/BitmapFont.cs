namespace SearchOrchestrator.Imaging;

/// <summary>
/// A 3×5 pixel font for captions: digits, the letters a–z (drawn as capitals) and a little
/// punctuation. Kept instead of a font through SkiaSharp: a fresh machine may have no font files, Core stays free of
/// native code, and a caption draws the same pixels everywhere, so tests can compare images exactly.
/// </summary>
internal static class BitmapFont
{
    /// <summary>Glyph height in font pixels.</summary>
    public const int GlyphHeight = 5;

    private const int GlyphWidth = 3;

    // Each glyph is five rows of three bits, most significant bit on the left.
    private static readonly Dictionary<char, byte[]> Glyphs = new()
    {
        ['0'] = [0b111, 0b101, 0b101, 0b101, 0b111],
        ['1'] = [0b010, 0b110, 0b010, 0b010, 0b111],
        ['2'] = [0b111, 0b001, 0b111, 0b100, 0b111],
        ['3'] = [0b111, 0b001, 0b111, 0b001, 0b111],
        ['4'] = [0b101, 0b101, 0b111, 0b001, 0b001],
        ['5'] = [0b111, 0b100, 0b111, 0b001, 0b111],
        ['6'] = [0b111, 0b100, 0b111, 0b101, 0b111],
        ['7'] = [0b111, 0b001, 0b001, 0b001, 0b001],
        ['8'] = [0b111, 0b101, 0b111, 0b101, 0b111],
        ['9'] = [0b111, 0b101, 0b111, 0b001, 0b111],
        ['c'] = [0b011, 0b100, 0b100, 0b100, 0b011],
        ['n'] = [0b110, 0b101, 0b101, 0b101, 0b101],
        ['s'] = [0b011, 0b100, 0b010, 0b001, 0b110],
        ['a'] = [0b010, 0b101, 0b111, 0b101, 0b101],
        ['b'] = [0b110, 0b101, 0b110, 0b101, 0b110],
        ['d'] = [0b110, 0b101, 0b101, 0b101, 0b110],
        ['e'] = [0b111, 0b100, 0b110, 0b100, 0b111],
        ['f'] = [0b111, 0b100, 0b110, 0b100, 0b100],
        ['g'] = [0b011, 0b100, 0b101, 0b101, 0b011],
        ['h'] = [0b101, 0b101, 0b111, 0b101, 0b101],
        ['i'] = [0b111, 0b010, 0b010, 0b010, 0b111],
        ['j'] = [0b001, 0b001, 0b001, 0b101, 0b010],
        ['k'] = [0b101, 0b101, 0b110, 0b101, 0b101],
        ['l'] = [0b100, 0b100, 0b100, 0b100, 0b111],
        ['m'] = [0b101, 0b111, 0b111, 0b101, 0b101],
        ['o'] = [0b010, 0b101, 0b101, 0b101, 0b010],
        ['p'] = [0b110, 0b101, 0b110, 0b100, 0b100],
        ['q'] = [0b010, 0b101, 0b101, 0b110, 0b011],
        ['r'] = [0b110, 0b101, 0b110, 0b101, 0b101],
        ['t'] = [0b111, 0b010, 0b010, 0b010, 0b010],
        ['u'] = [0b101, 0b101, 0b101, 0b101, 0b111],
        ['v'] = [0b101, 0b101, 0b101, 0b101, 0b010],
        ['w'] = [0b101, 0b101, 0b111, 0b111, 0b101],
        ['x'] = [0b101, 0b101, 0b010, 0b101, 0b101],
        ['y'] = [0b101, 0b101, 0b010, 0b010, 0b010],
        ['z'] = [0b111, 0b001, 0b010, 0b100, 0b111],
        [','] = [0b000, 0b000, 0b000, 0b010, 0b100],
        ['_'] = [0b000, 0b000, 0b000, 0b000, 0b111],
        ['='] = [0b000, 0b111, 0b000, 0b111, 0b000],
        ['-'] = [0b000, 0b000, 0b111, 0b000, 0b000],
        ['.'] = [0b000, 0b000, 0b000, 0b000, 0b010],
        [':'] = [0b000, 0b010, 0b000, 0b010, 0b000],
        ['?'] = [0b111, 0b001, 0b011, 0b000, 0b010],
        [' '] = [0b000, 0b000, 0b000, 0b000, 0b000],
    };

    /// <summary>Draws <paramref name="text"/> with its top-left corner at (x, y); unknown characters draw as '?'.</summary>
    public static void Draw(RgbImage image, string text, int x, int y, int scale, (byte R, byte G, byte B) color)
    {
        ArgumentNullException.ThrowIfNull(image);
        ArgumentNullException.ThrowIfNull(text);
        foreach (var ch in text)
        {
            var glyph = Glyphs.TryGetValue(char.ToLowerInvariant(ch), out var g) ? g : Glyphs['?'];
            for (var row = 0; row < GlyphHeight; row++)
            {
                for (var col = 0; col < GlyphWidth; col++)
                {
                    if ((glyph[row] & (1 << (GlyphWidth - 1 - col))) != 0)
                    {
                        image.Fill(x + (col * scale), y + (row * scale), scale, scale, color);
                    }
                }
            }

            x += (GlyphWidth + 1) * scale;
        }
    }
}
