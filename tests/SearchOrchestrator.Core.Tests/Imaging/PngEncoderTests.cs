using System.Buffers.Binary;
using System.IO.Compression;
using SearchOrchestrator.Imaging;

namespace SearchOrchestrator.Core.Tests.Imaging;

public sealed class PngEncoderTests
{
    [Fact]
    public void MaxSize_IncompressibleImage_BoundsTheEncodedSize()
    {
        var (width, height) = ImageGrid.SingleTileSize(24, 24);
        var image = new RgbImage(width, height);
        var random = new Random(7);
        for (var y = 0; y < height; y++)
        {
            for (var x = 0; x < width; x++)
            {
                image.Set(x, y, ((byte)random.Next(256), (byte)random.Next(256), (byte)random.Next(256)));
            }
        }

        var png = PngEncoder.Encode(image);

        Assert.InRange(png.Length, width * height * 3, PngEncoder.MaxSize(width, height));
    }

    [Fact]
    public void SingleTileSize_OneTile_IsTheSizeComposeGives()
    {
        var image = ImageGrid.Compose([new GridTile(new float[24 * 24], string.Empty)], 24, 24, (-1f, 1f));

        Assert.Equal(ImageGrid.SingleTileSize(24, 24), (image.Width, image.Height));
    }

    [Fact]
    public void Encode_SmallImage_WritesValidChunksThatDecodeToThePixels()
    {
        var image = new RgbImage(3, 2);
        image.Set(0, 0, (255, 0, 0));
        image.Set(2, 1, (10, 20, 30));

        var png = PngEncoder.Encode(image);

        Assert.Equal(new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A }, png[..8]);
        var chunks = ReadChunks(png);
        Assert.Equal(["IHDR", "IDAT", "IEND"], chunks.Select(c => c.Type));
        var header = chunks[0].Data;
        Assert.Equal(3, BinaryPrimitives.ReadInt32BigEndian(header));
        Assert.Equal(2, BinaryPrimitives.ReadInt32BigEndian(header.AsSpan(4)));
        Assert.Equal(8, header[8]);
        Assert.Equal(2, header[9]);

        using var inflated = new MemoryStream();
        using (var zlib = new ZLibStream(new MemoryStream(chunks[1].Data), CompressionMode.Decompress))
        {
            zlib.CopyTo(inflated);
        }

        var raw = inflated.ToArray();
        Assert.Equal(2 * (1 + 9), raw.Length);
        Assert.Equal(new byte[] { 0, 255, 0, 0, 0, 0, 0, 0, 0, 0 }, raw[..10]);
        Assert.Equal(new byte[] { 0, 0, 0, 0, 0, 0, 0, 10, 20, 30 }, raw[10..]);
    }

    [Fact]
    public void Encode_Chunks_CarryTheStandardCrc32()
    {
        var png = PngEncoder.Encode(new RgbImage(1, 1));

        // The IEND chunk's CRC is the same in every PNG file.
        Assert.Equal(new byte[] { 0xAE, 0x42, 0x60, 0x82 }, png[^4..]);
    }

    [Fact]
    public void Compose_GridOfTiles_LaysOutRowsAndColumnsAtScale()
    {
        var tile = new GridTile(Enumerable.Repeat(1f, 4).ToArray(), "n=1 c=1", CaptionTone.Good);

        var grid = ImageGrid.Compose([tile, tile, tile], height: 2, width: 2, range: (-1f, 1f), scale: 4, columns: 2);

        // Two columns of 8-pixel tiles with 8-pixel gaps; two rows of captioned tiles.
        Assert.Equal(8 + (2 * (8 + 8)), grid.Width);
        Assert.Equal(8 + (2 * (8 + 15 + 8 + 8)), grid.Height);
        var firstPixel = ((((8 + 15 + 8) * grid.Width) + 8) * 3);
        Assert.Equal(new byte[] { 255, 255, 255 }, grid.Pixels[firstPixel..(firstPixel + 3)]);
    }

    private static List<(string Type, byte[] Data)> ReadChunks(byte[] png)
    {
        var chunks = new List<(string, byte[])>();
        for (var offset = 8; offset < png.Length;)
        {
            var length = BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(offset));
            var type = System.Text.Encoding.ASCII.GetString(png, offset + 4, 4);
            chunks.Add((type, png[(offset + 8)..(offset + 8 + length)]));
            offset += 12 + length;
        }

        return chunks;
    }
}
