using SearchOrchestrator.Randomness;

namespace SearchOrchestrator.Core.Tests.Randomness;

public sealed class RngKeyTests
{
    private static float[] Draw(RngKey key, NoiseUse use, int step, int length = 16)
    {
        var values = new float[length];
        key.FillStandardNormal(use, step, values);
        return values;
    }

    [Fact]
    public void FillStandardNormal_SameSeedAndPath_GivesSameNoise()
    {
        var first = RngKey.ForSeed(42).Child(3).Child(1);
        var second = RngKey.ForSeed(42).Child(3).Child(1);

        Assert.Equal(first, second);
        Assert.Equal(Draw(first, NoiseUse.Step, 17), Draw(second, NoiseUse.Step, 17));
    }

    [Fact]
    public void FillStandardNormal_DifferentSeedPathUseOrStep_GivesDifferentNoise()
    {
        var node = RngKey.ForSeed(42).Child(3);
        var reference = Draw(node, NoiseUse.Step, 5);

        Assert.NotEqual(reference, Draw(RngKey.ForSeed(43).Child(3), NoiseUse.Step, 5));
        Assert.NotEqual(reference, Draw(RngKey.ForSeed(42).Child(4), NoiseUse.Step, 5));
        Assert.NotEqual(reference, Draw(node.Child(0), NoiseUse.Step, 5));
        Assert.NotEqual(reference, Draw(node, NoiseUse.Renoise, 5));
        Assert.NotEqual(reference, Draw(node, NoiseUse.Step, 6));
    }

    [Fact]
    public void Child_SiblingsAndDescendants_AllHaveDistinctKeys()
    {
        var root = RngKey.ForSeed(1);
        var keys = new HashSet<RngKey>();
        for (var a = 0; a < 50; a++)
        {
            keys.Add(root.Child(a));
            for (var b = 0; b < 50; b++)
            {
                keys.Add(root.Child(a).Child(b));
            }
        }

        Assert.Equal(50 + (50 * 50), keys.Count);
    }

    [Fact]
    public void Child_NegativeIndex_Throws()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => RngKey.ForSeed(1).Child(-1));
    }
}
