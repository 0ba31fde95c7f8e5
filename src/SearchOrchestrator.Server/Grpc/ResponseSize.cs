using SearchOrchestrator.Denoising;
using SearchOrchestrator.Imaging;
using SearchOrchestrator.Processes;
using SearchOrchestrator.Protos.V1;

namespace SearchOrchestrator.Server.Grpc;

/// <summary>
/// The most bytes a <see cref="GenerateResponse"/> can take, worked out from the request before its search runs
/// (its candidates × what each carries), so a response over <see cref="ServingOptions.MaxSendMessageSize"/> is refused
/// up front instead of being built, held in memory and then dropped by the transport.
/// </summary>
internal static class ResponseSize
{
    /// <summary>The cost account, strategy name and framing of the response, however many candidates it has.</summary>
    private const long Fixed = 4096;

    /// <summary>The most bytes of one candidate.</summary>
    public static long PerCandidate(GenerateRequest request, int steps, DenoiserDescription denoiser)
    {
        var elements = denoiser.SampleShape.ElementCount;
        // Path ("0/3/1" …: at most one fork or renoise level per step), flags, score, shape and per-verifier scores.
        var bytes = 64 + (steps * 12L) + (denoiser.SampleShape.Dimensions.Count * 6L) + request.Verifiers.Sum(v => v.Length + 16L);
        if (denoiser.Process is MaskedProcess masked)
        {
            // Token ids (at most 5 bytes each as varints) and the text they decode to (UTF-8, at most 4 bytes a character).
            bytes += (elements * 5L) + (elements * 4L * masked.Vocabulary.Select(t => (long)t.Length).DefaultIfEmpty(1).Max());
        }

        if (request.IncludeTensors)
        {
            bytes += (elements * 4L) + 6;
        }

        if (request.IncludePng && denoiser.SampleShape.IsImage)
        {
            var (width, height) = ImageGrid.SingleTileSize(denoiser.SampleShape.Dimensions[1], denoiser.SampleShape.Dimensions[2]);
            bytes += PngEncoder.MaxSize(width, height) + 6;
        }

        return bytes;
    }

    /// <summary>The most bytes of the whole response for <paramref name="candidates"/> candidates.</summary>
    public static long Planned(GenerateRequest request, int candidates, int steps, DenoiserDescription denoiser) =>
        Fixed + (candidates * PerCandidate(request, steps, denoiser));
}
