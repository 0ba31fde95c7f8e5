using SearchOrchestrator.Server.Internal;

namespace SearchOrchestrator.Server.Tests.Workers;

public sealed class TensorCodecTests
{
    [Fact]
    public void Encode_Floats_AreLittleEndianBytes()
    {
        var bytes = TensorCodec.Encode<float>([1f, -2f]).ToByteArray();

        Assert.Equal(new byte[] { 0x00, 0x00, 0x80, 0x3F, 0x00, 0x00, 0x00, 0xC0 }, bytes);
    }

    [Fact]
    public void Decode_EncodedLongs_RoundTripsExactly()
    {
        long[] values = [0, 1, -1, long.MaxValue, long.MinValue];

        Assert.Equal(values, TensorCodec.Decode<long>(TensorCodec.Encode<long>(values).Span)!);
    }

    [Fact]
    public void Decode_NotAWholeNumberOfValues_IsNull()
    {
        Assert.Null(TensorCodec.Decode<float>(new byte[6]));
    }

    [Fact]
    public void DecodeFinite_ANaN_IsNull()
    {
        Assert.Null(TensorCodec.DecodeFinite(TensorCodec.Encode<float>([1f, float.NaN])));
        Assert.Equal(new[] { 1f, 2f }, TensorCodec.DecodeFinite(TensorCodec.Encode<float>([1f, 2f]))!);
    }
}
