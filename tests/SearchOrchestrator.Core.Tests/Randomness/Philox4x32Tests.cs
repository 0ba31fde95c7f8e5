using SearchOrchestrator.Randomness;

namespace SearchOrchestrator.Core.Tests.Randomness;

public sealed class Philox4x32Tests
{
    // Known-answer vectors for Philox4x32-10 from the Random123 distribution (kat_vectors).
    [Theory]
    [InlineData(0x00000000u, 0x00000000u, 0x00000000u, 0x00000000u, 0x00000000u, 0x00000000u, 0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u)]
    [InlineData(0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu, 0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu)]
    [InlineData(0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u, 0xa4093822u, 0x299f31d0u, 0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u)]
    public void Block_KnownAnswerVectors_MatchReference(uint c0, uint c1, uint c2, uint c3, uint k0, uint k1, uint x0, uint x1, uint x2, uint x3)
    {
        var result = Philox4x32.Block(c0, c1, c2, c3, k0, k1);

        Assert.Equal((x0, x1, x2, x3), result);
    }

    [Fact]
    public void FillStandardNormal_ManyDraws_HaveZeroMeanAndUnitVariance()
    {
        var values = new float[400_000];

        Philox4x32.FillStandardNormal(12345, 7, values);

        var mean = values.Average(v => (double)v);
        var variance = values.Average(v => ((double)v - mean) * ((double)v - mean));
        var kurtosis = values.Average(v => Math.Pow(v - mean, 4)) / (variance * variance);
        // Standard errors at n = 400 000: mean 0.0016, variance 0.0022, kurtosis 0.0077; allow five of each.
        Assert.InRange(mean, -0.008, 0.008);
        Assert.InRange(variance, 0.989, 1.011);
        Assert.InRange(kurtosis, 2.96, 3.04);
    }

    [Fact]
    public void FillStandardNormal_OddLength_IsPrefixOfLongerStream()
    {
        var shortStream = new float[5];
        var longStream = new float[8];

        Philox4x32.FillStandardNormal(99, 3, shortStream);
        Philox4x32.FillStandardNormal(99, 3, longStream);

        Assert.Equal(longStream[..5], shortStream);
    }
}
