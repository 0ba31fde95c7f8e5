using System.Runtime.CompilerServices;

namespace SearchOrchestrator.Randomness;

/// <summary>
/// The Philox4x32-10 counter-based generator (Salmon et al., 2011, "Parallel Random Numbers: As Easy as
/// 1, 2, 3"). Output is a pure function of (key, counter): there is no state to share, lock or advance,
/// so any node's noise can be drawn on any thread, in any order, and drawn again identically.
/// </summary>
internal static class Philox4x32
{
    private const uint M0 = 0xD2511F53;
    private const uint M1 = 0xCD9E8D57;
    private const uint W0 = 0x9E3779B9;
    private const uint W1 = 0xBB67AE85;

    /// <summary>One 128-bit output block for a 128-bit counter and a 64-bit key.</summary>
    public static (uint X0, uint X1, uint X2, uint X3) Block(uint c0, uint c1, uint c2, uint c3, uint k0, uint k1)
    {
        for (var round = 0; round < 10; round++)
        {
            if (round > 0)
            {
                k0 += W0;
                k1 += W1;
            }

            var p0 = (ulong)M0 * c0;
            var p1 = (ulong)M1 * c2;
            var n0 = (uint)(p1 >> 32) ^ c1 ^ k0;
            var n2 = (uint)(p0 >> 32) ^ c3 ^ k1;
            c1 = (uint)p1;
            c3 = (uint)p0;
            c0 = n0;
            c2 = n2;
        }

        return (c0, c1, c2, c3);
    }

    /// <summary>
    /// Fills <paramref name="destination"/> with independent standard normal draws from the stream
    /// <paramref name="stream"/> of <paramref name="key"/> (Box–Muller on 53-bit uniforms).
    /// </summary>
    public static void FillStandardNormal(ulong key, ulong stream, Span<float> destination)
    {
        var k0 = (uint)key;
        var k1 = (uint)(key >> 32);
        var s0 = (uint)stream;
        var s1 = (uint)(stream >> 32);
        for (int i = 0, block = 0; i < destination.Length; i += 2, block++)
        {
            var (x0, x1, x2, x3) = Block((uint)block, 0, s0, s1, k0, k1);
            var (z0, z1) = BoxMuller(ToOpenUnit(x0, x1), ToUnit(x2, x3));
            destination[i] = (float)z0;
            if (i + 1 < destination.Length)
            {
                destination[i + 1] = (float)z1;
            }
        }
    }

    /// <summary>Fills <paramref name="destination"/> with independent uniforms in [0, 1) (53-bit) from the stream.</summary>
    public static void FillUniform(ulong key, ulong stream, Span<double> destination)
    {
        var k0 = (uint)key;
        var k1 = (uint)(key >> 32);
        for (int i = 0, block = 0; i < destination.Length; i += 2, block++)
        {
            var (x0, x1, x2, x3) = Block((uint)block, 0, (uint)stream, (uint)(stream >> 32), k0, k1);
            destination[i] = ToUnit(x0, x1);
            if (i + 1 < destination.Length)
            {
                destination[i + 1] = ToUnit(x2, x3);
            }
        }
    }

    /// <summary>Uniform in (0, 1], never 0, so the logarithm in Box–Muller is finite.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static double ToOpenUnit(uint hi, uint lo) => (Bits53(hi, lo) + 1.0) / 9007199254740992.0;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static double ToUnit(uint hi, uint lo) => Bits53(hi, lo) / 9007199254740992.0;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong Bits53(uint hi, uint lo) => (((ulong)hi << 32) | lo) >> 11;

    private static (double Z0, double Z1) BoxMuller(double u1, double u2)
    {
        var radius = Math.Sqrt(-2.0 * Math.Log(u1));
        var (sin, cos) = Math.SinCos(2.0 * Math.PI * u2);
        return (radius * cos, radius * sin);
    }
}
