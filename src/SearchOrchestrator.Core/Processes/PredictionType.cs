namespace SearchOrchestrator.Processes;

/// <summary>What a gaussian denoiser's output means.</summary>
public enum PredictionType
{
    /// <summary>The noise ε that was added.</summary>
    Epsilon,

    /// <summary>The clean sample x0.</summary>
    Sample,

    /// <summary>The velocity v = √ᾱ·ε − √(1−ᾱ)·x0 (Salimans &amp; Ho, 2022).</summary>
    V,
}
