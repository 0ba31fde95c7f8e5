using SearchOrchestrator.Denoising;
using SearchOrchestrator.Scheduling;
using SearchOrchestrator.Workers;

namespace SearchOrchestrator.Search;

/// <summary>
/// A pipeline's decoder as one search uses it: each latent is decoded where it finishes soonest, this process's decoder
/// batcher or a remote backend that serves the pipeline's decoder (a worker, or an Open Inference Protocol server: any
/// <see cref="IDecoderBackend"/>, as <see cref="WorkerOptions.DecoderPlacement"/> allows), once moving the latent there
/// and the image back over its link is counted. A backend that fails is left for the next choice. What remote decodes
/// moved is in the search's cost account under <see cref="StageNames.Decoder"/>. The decoder
/// is deterministic, so the image does not depend on where it was decoded.
/// </summary>
internal sealed class PlacedDecoder(DecoderBatcher local, WorkerPool? pool, TreeLedger ledger)
{
    /// <summary>The decoder's shapes.</summary>
    public DecoderDescription Description => local.Description;

    /// <summary>Decodes one latent where it finishes soonest.</summary>
    /// <exception cref="NoBackendException">The placement allows only workers and none that hosts the pipeline could decode.</exception>
    public async Task<(float[] Image, BatchTiming Timing)> DecodeAsync(ReadOnlyMemory<float> latent, CancellationToken cancellationToken)
    {
        HashSet<IDecoderBackend> failed = [];
        var lastFailure = string.Empty;
        while (true)
        {
            var (worker, here) = Choose(failed);
            if (worker is null)
            {
                return here
                    ? await local.DecodeAsync(latent, cancellationToken).ConfigureAwait(false)
                    : throw new NoBackendException($"No remote backend in rotation can run the decoder of pipeline '{Description.Name}' and {WorkerOptions.SectionName}:DecoderPlacement is '{DecoderPlacements.Workers}'.{lastFailure}");
            }

            try
            {
                var (image, timing, transfer) = await worker.DecodeAsync(Description.Name, latent, cancellationToken).ConfigureAwait(false);
                ledger.RecordTransfer(worker, transfer, StageNames.Decoder);
                return image.Length == Description.ImageShape.ElementCount
                    ? (image, timing)
                    : throw new WorkerDataException(worker.Name, $"Decode returned {image.Length} values for an image of {Description.ImageShape} ({Description.ImageShape.ElementCount}).");
            }
            catch (Exception ex) when (!cancellationToken.IsCancellationRequested && ex is WorkerUnavailableException or WorkerDataException)
            {
                TreeLog.BackendFailed(ledger.Logger, worker.Name, "decoding", ex.Message);
                failed.Add(worker);
                lastFailure = $" {worker.Name}: {ex.Message}";
            }
        }
    }

    /// <summary>The remote backend to decode on, or none; <c>Here</c> says whether this process may decode instead.</summary>
    private (IDecoderBackend? Worker, bool Here) Choose(HashSet<IDecoderBackend> failed)
    {
        var placement = pool?.Options.DecoderPlacement ?? DecoderPlacements.Local;
        var here = placement != DecoderPlacements.Workers;
        if (pool is null || placement == DecoderPlacements.Local)
        {
            return (null, here);
        }

        // The latent goes there and the image comes back.
        var bytes = (long)(Description.LatentShape.ElementCount + Description.ImageShape.ElementCount) * sizeof(float);
        var best = pool.Backends.OfType<IDecoderBackend>()
            .Where(w => w.IsAvailable && !failed.Contains(w) && w.ServesStage(Description.Name, StageNames.Decoder))
            .Select(w => (Worker: (IDecoderBackend?)w, Time: w.DecoderCompute.Predict(1) + w.Link!.Predict(bytes)))
            .OrderBy(c => c.Time)
            .FirstOrDefault();
        return best.Worker is null || (here && local.Compute.Predict(1) <= best.Time) ? (null, here) : (best.Worker, here);
    }
}
