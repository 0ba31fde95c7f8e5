namespace SearchOrchestrator.Imaging;

/// <summary>A 3×5 pixel font for captions: digits, a few lowercase letters and punctuation.</summary>
public static class BitmapFont
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
        ['c'] = [0b000, 0b111, 0b100, 0b100, 0b111],
        ['n'] = [0b000, 0b110, 0b101, 0b101, 0b101],
        ['s'] = [0b000, 0b111, 0b110, 0b011, 0b111],
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
