namespace SearchOrchestrator.Imaging;

/// <summary>How a tile's caption is coloured.</summary>
public enum CaptionTone
{
    /// <summary>Plain white.</summary>
    Neutral,

    /// <summary>Green: the sample does what was asked.</summary>
    Good,

    /// <summary>Red: the sample misses what was asked.</summary>
    Bad,
}

/// <summary>One image of a grid: a grayscale or RGB sample and the caption drawn above it ('\n' starts a new line).</summary>
public sealed record GridTile(ReadOnlyMemory<float> Pixels, string Caption, CaptionTone Tone = CaptionTone.Neutral);

/// <summary>
/// Lays single-channel samples out as a captioned grid, each pixel upscaled to a block so a person can see a
/// 24×24 sample, and each tile captioned with a small bitmap font.
/// </summary>
public static class ImageGrid
{
    private const int Gap = 8;
    private const int FontScale = 3;
    private const int LineGap = 4;
    private const int LineHeight = (BitmapFont.GlyphHeight * FontScale) + LineGap;
    private static readonly (byte, byte, byte) Background = (40, 40, 48);

    /// <summary>The width and height <see cref="Compose"/> gives one uncaptioned tile of <paramref name="height"/> × <paramref name="width"/> pixels.</summary>
    public static (int Width, int Height) SingleTileSize(int height, int width, int scale = 8) => ((width * scale) + (2 * Gap), (height * scale) + (2 * Gap));

    /// <summary>Composes the grid.</summary>
    /// <param name="tiles">The samples, each height × width floats.</param>
    /// <param name="height">Sample height.</param>
    /// <param name="width">Sample width.</param>
    /// <param name="range">The value range mapped to black … white.</param>
    /// <param name="scale">Each sample pixel becomes a scale × scale block.</param>
    /// <param name="columns">Tiles per row; 0 picks a near-square layout.</param>
    /// <param name="channels">1: grayscale samples (height × width); 3: RGB samples, channel-first (3 × height × width).</param>
    public static RgbImage Compose(IReadOnlyList<GridTile> tiles, int height, int width, (float Min, float Max) range, int scale = 8, int columns = 0, int channels = 1)
    {
        ArgumentNullException.ThrowIfNull(tiles);
        ArgumentOutOfRangeException.ThrowIfZero(tiles.Count);
        ArgumentOutOfRangeException.ThrowIfLessThan(scale, 1);
        if (channels is not (1 or 3))
        {
            throw new ArgumentOutOfRangeException(nameof(channels), channels, "Tiles are grayscale (1 channel) or RGB (3 channels).");
        }

        if (columns <= 0)
        {
            columns = (int)Math.Ceiling(Math.Sqrt(tiles.Count));
        }

        columns = Math.Min(columns, tiles.Count);
        var rows = (tiles.Count + columns - 1) / columns;
        var lines = tiles.Max(t => t.Caption.Length == 0 ? 0 : t.Caption.Split('\n').Length);
        var captionHeight = lines == 0 ? 0 : (lines * LineHeight) - LineGap + Gap;
        var tileWidth = width * scale;
        var tileHeight = (height * scale) + captionHeight;
        var image = new RgbImage((columns * (tileWidth + Gap)) + Gap, (rows * (tileHeight + Gap)) + Gap);
        image.Fill(0, 0, image.Width, image.Height, Background);

        for (var i = 0; i < tiles.Count; i++)
        {
            var left = Gap + ((i % columns) * (tileWidth + Gap));
            var top = Gap + ((i / columns) * (tileHeight + Gap));
            var tile = tiles[i];
            var plane = height * width;
            if (tile.Pixels.Length != channels * plane)
            {
                throw new ArgumentException($"Tile {i} has {tile.Pixels.Length} values, expected {channels * plane}.", nameof(tiles));
            }

            var captionLines = tile.Caption.Split('\n');
            for (var line = 0; line < captionLines.Length; line++)
            {
                BitmapFont.Draw(image, captionLines[line], left, top + (line * LineHeight), FontScale, ColorOf(tile.Tone));
            }

            var pixels = tile.Pixels.Span;
            for (var y = 0; y < height; y++)
            {
                for (var x = 0; x < width; x++)
                {
                    var at = (y * width) + x;
                    var red = Level(pixels[at], range);
                    var color = channels == 1 ? (red, red, red) : (red, Level(pixels[plane + at], range), Level(pixels[(2 * plane) + at], range));
                    image.Fill(left + (x * scale), top + captionHeight + (y * scale), scale, scale, color);
                }
            }
        }

        return image;
    }

    private static byte Level(float value, (float Min, float Max) range) =>
        (byte)Math.Clamp((int)MathF.Round((value - range.Min) / (range.Max - range.Min) * 255f), 0, 255);

    private static (byte, byte, byte) ColorOf(CaptionTone tone) => tone switch
    {
        CaptionTone.Good => (90, 220, 110),
        CaptionTone.Bad => (240, 90, 80),
        _ => (235, 235, 235),
    };
}
