namespace SearchOrchestrator.Randomness;

/// <summary>What a node's noise is for; each use draws from its own stream so uses never overlap.</summary>
public enum NoiseUse : uint
{
    /// <summary>The pure-noise state of a root node (step index 0).</summary>
    Prior = 1,

    /// <summary>The stochastic part of the sampler's move from step index i to i + 1 (η &gt; 0).</summary>
    Step = 2,

    /// <summary>The forward-kernel noise of renoise(node, j).</summary>
    Renoise = 3,

    /// <summary>The uniforms a strategy draws to resample particles.</summary>
    Resample = 4,

    /// <summary>The uniforms a masked sampler's policy draws to choose which positions to unmask.</summary>
    Unmask = 5,
}

/// <summary>
/// The RNG key of one node: a pure function of the request seed and the node's path in the trajectory
/// tree (root index, then child index at each fork). Noise drawn with it therefore does not depend on
/// batch composition, scheduling order or which backend ran the step.
/// </summary>
public readonly record struct RngKey(ulong Value)
{
    /// <summary>The key of a request; its roots are <c>ForSeed(seed).Child(rootIndex)</c>.</summary>
    public static RngKey ForSeed(ulong seed) => new(Mix(seed ^ 0x5EA4C40C4E574A7BUL));

    /// <summary>The key of child <paramref name="index"/> of the node that owns this key.</summary>
    public RngKey Child(int index)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        return new(Mix(Value + ((ulong)index + 1) * 0x9E3779B97F4A7C15UL));
    }

    /// <summary>
    /// Standard normal noise for <paramref name="use"/> at step index <paramref name="step"/>: the same
    /// (key, use, step) always yields the same numbers.
    /// </summary>
    public void FillStandardNormal(NoiseUse use, int step, Span<float> destination)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(step);
        Philox4x32.FillStandardNormal(Value, ((ulong)use << 32) | (uint)step, destination);
    }

    /// <summary>Uniforms in [0, 1) for <paramref name="use"/> at step index <paramref name="step"/>, a pure function of (key, use, step).</summary>
    public void FillUniform(NoiseUse use, int step, Span<double> destination)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(step);
        Philox4x32.FillUniform(Value, ((ulong)use << 32) | (uint)step, destination);
    }

    // SplitMix64's finaliser: a bijective mix with full avalanche, so nearby seeds and paths give unrelated keys.
    private static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
