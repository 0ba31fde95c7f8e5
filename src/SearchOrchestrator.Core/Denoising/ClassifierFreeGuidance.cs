namespace SearchOrchestrator.Denoising;

/// <summary>
/// Classifier-free guidance (Ho &amp; Salimans, 2022): p̃ = p_uncond + w·(p_cond − p_uncond). w = 1 is the
/// plain conditional model, w = 0 the unconditional one, w &gt; 1 sharpens toward the condition.
/// </summary>
internal static class ClassifierFreeGuidance
{
    /// <summary>True when scale w needs the unconditional pass at all.</summary>
    public static bool NeedsUnconditional(double scale) => scale != 1.0;

    /// <summary>Checks a guidance scale is finite and non-negative (a pipeline's unconditional branch is its negative prompt).</summary>
    public static void Validate(double scale)
    {
        if (!double.IsFinite(scale) || scale < 0)
        {
            throw new InvalidRequestException("guidance", $"guidance must be a finite number >= 0 (1 = no guidance), got {scale}.");
        }
    }

    /// <summary>Checks a guidance scale is finite and non-negative, and that the model has a null condition if it guides.</summary>
    public static void Validate(double scale, ConditionVocabulary conditions, string modelName)
    {
        Validate(scale);

        if (NeedsUnconditional(scale) && !conditions.SupportsGuidance)
        {
            throw new InvalidRequestException("guidance", $"model '{modelName}' has no null condition, so guidance must be 1, got {scale}.");
        }
    }

    /// <summary>Writes p_uncond + w·(p_cond − p_uncond) into <paramref name="destination"/>.</summary>
    public static void Combine(ReadOnlySpan<float> conditional, ReadOnlySpan<float> unconditional, double scale, Span<float> destination)
    {
        for (var k = 0; k < destination.Length; k++)
        {
            destination[k] = (float)(unconditional[k] + (scale * (conditional[k] - unconditional[k])));
        }
    }
}
