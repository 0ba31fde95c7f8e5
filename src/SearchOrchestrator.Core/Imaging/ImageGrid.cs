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

/// <summary>One image of a grid: a single-channel sample and the caption drawn above it.</summary>
public sealed record GridTile(ReadOnlyMemory<float> Pixels, string Caption, CaptionTone Tone = CaptionTone.Neutral);

/// <summary>
/// Lays single-channel samples out as a captioned grid, each pixel upscaled to a block so a person can see a
/// 24×24 sample, and each tile captioned with a small bitmap font.
/// </summary>
public static class ImageGrid
{
    private const int Gap = 8;
    private const int FontScale = 3;
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
    public static RgbImage Compose(IReadOnlyList<GridTile> tiles, int height, int width, (float Min, float Max) range, int scale = 8, int columns = 0)
    {
        ArgumentNullException.ThrowIfNull(tiles);
        ArgumentOutOfRangeException.ThrowIfZero(tiles.Count);
        ArgumentOutOfRangeException.ThrowIfLessThan(scale, 1);
        if (columns <= 0)
        {
            columns = (int)Math.Ceiling(Math.Sqrt(tiles.Count));
        }

        columns = Math.Min(columns, tiles.Count);
        var rows = (tiles.Count + columns - 1) / columns;
        var captionHeight = tiles.Any(t => t.Caption.Length > 0) ? (BitmapFont.GlyphHeight * FontScale) + Gap : 0;
        var tileWidth = width * scale;
        var tileHeight = (height * scale) + captionHeight;
        var image = new RgbImage((columns * (tileWidth + Gap)) + Gap, (rows * (tileHeight + Gap)) + Gap);
        image.Fill(0, 0, image.Width, image.Height, Background);

        for (var i = 0; i < tiles.Count; i++)
        {
            var left = Gap + ((i % columns) * (tileWidth + Gap));
            var top = Gap + ((i / columns) * (tileHeight + Gap));
            var tile = tiles[i];
            if (tile.Pixels.Length != height * width)
            {
                throw new ArgumentException($"Tile {i} has {tile.Pixels.Length} values, expected {height * width}.", nameof(tiles));
            }

            BitmapFont.Draw(image, tile.Caption, left, top, FontScale, ColorOf(tile.Tone));
            var pixels = tile.Pixels.Span;
            for (var y = 0; y < height; y++)
            {
                for (var x = 0; x < width; x++)
                {
                    var v = (pixels[(y * width) + x] - range.Min) / (range.Max - range.Min);
                    var level = (byte)Math.Clamp((int)MathF.Round(v * 255f), 0, 255);
                    image.Fill(left + (x * scale), top + captionHeight + (y * scale), scale, scale, (level, level, level));
                }
            }
        }

        return image;
    }

    private static (byte, byte, byte) ColorOf(CaptionTone tone) => tone switch
    {
        CaptionTone.Good => (90, 220, 110),
        CaptionTone.Bad => (240, 90, 80),
        _ => (235, 235, 235),
    };
}
