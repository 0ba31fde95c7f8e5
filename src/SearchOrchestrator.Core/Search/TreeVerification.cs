using SearchOrchestrator.Scheduling;
using SearchOrchestrator.Tensors;
using SearchOrchestrator.Verifiers;
using SearchOrchestrator.Workers;

namespace SearchOrchestrator.Search;

/// <summary>
/// How one tree scores its nodes: the verifiers of its ensemble (scored through the executor where a node's state lives,
/// or on decoded images for a pipeline's pixel verifiers), the verifier-call budget, the leave-out of failed remote
/// verifiers, and the pipeline's decoder. <see cref="TrajectoryTree.VerifyAsync(IReadOnlyList{Node}, int?, CancellationToken)"/> is its only caller besides the engine's
/// final decode.
/// </summary>
internal sealed class TreeVerification
{
    private readonly IReadOnlyList<VerifierBatcher> _verifiers;
    private readonly VerifierEnsemble _ensemble;
    private readonly bool _leaveOutFailedVerifiers;
    private readonly ITreeExecutor _executor;
    private readonly TreeLedger _ledger;
    private readonly string _condition;
    private readonly int _steps;
    private readonly SampleShape _sampleShape;
    private readonly NodePreviews? _previews;

    public TreeVerification(TreeSettings settings)
    {
        _verifiers = settings.Verifiers;
        _ensemble = settings.Ensemble;
        _leaveOutFailedVerifiers = settings.LeaveOutFailedVerifiers;
        _executor = settings.Executor;
        _ledger = settings.Ledger;
        _condition = settings.Condition;
        _steps = settings.Steps;
        _sampleShape = settings.Shape;
        _previews = settings.Previews;
        Decoding = settings.Decoding;
    }

    /// <summary>A pipeline's decoder and which verifiers score its images; null for other models.</summary>
    public TreeDecoding? Decoding { get; }

    /// <summary>
    /// Scores the nodes: see <see cref="TrajectoryTree.VerifyAsync(IReadOnlyList{Node}, int?, CancellationToken)"/>, or,
    /// with <paramref name="states"/>, <see cref="TrajectoryTree.VerifyStatesAsync"/> (<paramref name="previewSteps"/> is then 1).
    /// </summary>
    public async Task<IReadOnlyList<Node>> VerifyAsync(IReadOnlyList<Node> nodes, int previewSteps, bool states, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(nodes);
        if (_verifiers.Count == 0)
        {
            throw new InvalidOperationException("This search has no verifiers to score with.");
        }

        var j = previewSteps;
        ArgumentOutOfRangeException.ThrowIfLessThan(j, 1, nameof(previewSteps));

        var active = Enumerable.Range(0, _verifiers.Count).Where(v => !_ledger.IsLeftOut(_ensemble.Verifiers[v])).ToList();
        var names = active.Select(v => _ensemble.Verifiers[v]).ToList();
        var scored = new List<Node>(nodes.Count);
        foreach (var node in nodes)
        {
            TrajectoryTree.RequireLive(node);
            if (!node.HasPrediction && !states)
            {
                throw new InvalidOperationException($"{node} has no x0-prediction yet; advance it at least one step before verifying.");
            }

            var previewNfe = PlanContext.PreviewStepCount(j, node.StepIndex, _steps);
            if (previewNfe > 0 && !_ledger.TryReserveNfe(previewNfe))
            {
                _ledger.Refuse("preview", nodes.Count - scored.Count);
                break;
            }

            var decoderCalls = Decoding is { AnyPixels: true } && (previewNfe > 0 || (node.Pixels is null && !scored.Contains(node))) ? 1 : 0;
            if (_ledger.TryReserveVerification(names, decoderCalls) is { } refusal)
            {
                _ledger.Refuse(refusal, nodes.Count - scored.Count);
                break;
            }

            scored.Add(node);
        }

        if (scored.Count == 0)
        {
            return scored;
        }

        var previews = await PreviewAsync(scored, j, cancellationToken).ConfigureAwait(false);
        if (states)
        {
            await _executor.MaterializeAsync(scored, cancellationToken).ConfigureAwait(false);
        }

        if (Decoding is { AnyPixels: true })
        {
            await DecodeAsync([.. scored.Where(n => !previews.ContainsKey(n))], cancellationToken).ConfigureAwait(false);
            await DecodePreviewsAsync(previews, cancellationToken).ConfigureAwait(false);
        }

        var results = await Task.WhenAll(active.Select(v => ScoreOrLeaveOutAsync(v, scored, previews, states, cancellationToken))).ConfigureAwait(false);
        var kept = Enumerable.Range(0, active.Count).Where(k => results[k] is not null).ToList();
        if (kept.Count == 0)
        {
            var left = _ledger.VerifiersLeftOut;
            throw new VerifierFailedException(left[^1].Name, $"every verifier of this search failed and was left out: {string.Join(" ", left.Select(l => l.Reason))}", new NoBackendException(left[^1].Reason));
        }

        var scores = kept.Select(k => results[k]!).ToList();
        var combined = _ensemble.Combine(scores, [.. kept.Select(k => names[k])]);
        for (var i = 0; i < scored.Count; i++)
        {
            foreach (var k in kept)
            {
                scored[i].SetScore(names[k], results[k]![i]);
            }

            scored[i].Score = combined[i];
            scored[i].ScoredAtStep = scored[i].StepIndex;
            _ledger.Record(new TreeEvent(TreeEventKind.Verified, scored[i].Id, scored[i].Path, scored[i].StepIndex, Score: combined[i]));
        }

        return scored;
    }

    /// <summary>
    /// Scores with verifier <paramref name="v"/> (a node with a preview by its preview; with <paramref name="states"/>, the
    /// nodes' states, already brought here); null when it failed and was left out (a remote one, and the request allows it).
    /// </summary>
    private async Task<float[]?> ScoreOrLeaveOutAsync(int v, IReadOnlyList<Node> nodes, Dictionary<Node, Preview> previews, bool states, CancellationToken cancellationToken)
    {
        var batcher = _verifiers[v];
        try
        {
            if (states)
            {
                return await ScoreSamplesAsync(batcher, _sampleShape, [.. nodes.Select(n => (n.State[.._sampleShape.ElementCount].ToArray(), _previews!.StateTime(n)))], cancellationToken).ConfigureAwait(false);
            }

            if (Decoding is { } decoding && decoding.PixelVerifiers[v])
            {
                // Decoded images are clean samples: a time-taking verifier gets no time for them.
                return await ScoreSamplesAsync(batcher, decoding.Decoder.Description.ImageShape, [.. nodes.Select(n => (previews.TryGetValue(n, out var p) ? p.Pixels! : n.Pixels!, (float?)null))], cancellationToken).ConfigureAwait(false);
            }

            if (previews.Count == 0)
            {
                return await _executor.ScoreAsync(batcher.Name, batcher, nodes, cancellationToken).ConfigureAwait(false);
            }

            var elements = _sampleShape.ElementCount;
            return await ScoreSamplesAsync(batcher, _sampleShape, [.. nodes.Select(n => previews.TryGetValue(n, out var p)
                ? (p.Sample[..elements], (float?)p.Time)
                : (n.Prediction!.Value[..elements].ToArray(), _previews!.PredictionTime(n)))], cancellationToken).ConfigureAwait(false);
        }
        catch (VerifierFailedException ex) when (_leaveOutFailedVerifiers && batcher.Kind is VerifierKinds.KServe or VerifierKinds.Worker && !cancellationToken.IsCancellationRequested)
        {
            _ledger.LeaveOut(batcher.Name, ex.Message);
            return null;
        }
    }

    /// <summary>
    /// Decodes the x0-predictions of the nodes not yet decoded at their step (a pipeline's; held here) and keeps the images
    /// with the nodes. The caller has counted the decoder calls.
    /// </summary>
    public async Task DecodeAsync(IReadOnlyList<Node> nodes, CancellationToken cancellationToken)
    {
        var decoding = Decoding ?? throw new InvalidOperationException("This search has no decoder.");
        var latent = decoding.Decoder.Description.LatentShape.ElementCount;
        var image = decoding.Decoder.Description.ImageShape.ElementCount;
        var pending = nodes.Where(n => n.Pixels is null).Distinct().ToList();
        // Latents resident on a backend that serves the decoder are decoded there; the others come here first.
        foreach (var (node, pixels) in await _executor.DecodeWhereResidentAsync(decoding.Decoder.Description.Name, pending, cancellationToken).ConfigureAwait(false))
        {
            if (pixels.Length == image)
            {
                node.SetPixels(pixels);
            }
        }

        pending = [.. pending.Where(n => n.Pixels is null)];
        await _executor.MaterializeAsync(pending, cancellationToken).ConfigureAwait(false);
        var images = await Task.WhenAll(pending.Select(n => decoding.Decoder.DecodeAsync(n.Prediction!.Value[..latent], cancellationToken))).ConfigureAwait(false);
        for (var i = 0; i < pending.Count; i++)
        {
            pending[i].SetPixels(images[i].Image);
            _ledger.AddQueueTime(images[i].Timing.Queued);
        }
    }

    /// <summary>
    /// The previews of the nodes short of the last step when <paramref name="previewSteps"/> &gt; 1, by node (empty when
    /// there are none); nodes resident elsewhere are brought here first.
    /// </summary>
    private async Task<Dictionary<Node, Preview>> PreviewAsync(IReadOnlyList<Node> nodes, int previewSteps, CancellationToken cancellationToken)
    {
        var previewed = nodes.Where(n => PlanContext.PreviewStepCount(previewSteps, n.StepIndex, _steps) > 0).Distinct().ToList();
        if (previewed.Count == 0)
        {
            return [];
        }

        var previews = _previews ?? throw new InvalidOperationException("This tree cannot preview.");
        await _executor.MaterializeAsync(nodes, cancellationToken).ConfigureAwait(false);
        var results = await previews.RunAsync(previewed, previewSteps, _ledger, cancellationToken).ConfigureAwait(false);
        return previewed.Zip(results).ToDictionary(p => p.First, p => p.Second);
    }

    /// <summary>Decodes each preview's latent into its image (a pipeline's pixel verifiers score those). The caller has counted the decoder calls.</summary>
    private async Task DecodePreviewsAsync(Dictionary<Node, Preview> previews, CancellationToken cancellationToken)
    {
        var decoder = Decoding!.Decoder;
        var latent = decoder.Description.LatentShape.ElementCount;
        var nodes = previews.Keys.ToList();
        var images = await Task.WhenAll(nodes.Select(n => decoder.DecodeAsync(previews[n].Sample.AsMemory(0, latent), cancellationToken))).ConfigureAwait(false);
        for (var i = 0; i < nodes.Count; i++)
        {
            previews[nodes[i]] = previews[nodes[i]] with { Pixels = images[i].Image };
            _ledger.AddQueueTime(images[i].Timing.Queued);
        }
    }

    /// <summary>Scores samples (each with the model time it was predicted at, or none) with one verifier.</summary>
    private async Task<float[]> ScoreSamplesAsync(VerifierBatcher batcher, SampleShape shape, IReadOnlyList<(float[] Sample, float? Time)> samples, CancellationToken cancellationToken)
    {
        var results = await Task.WhenAll(samples.Select(s => batcher.ScoreAsync(shape, s.Sample, _condition, s.Time, cancellationToken: cancellationToken))).ConfigureAwait(false);
        foreach (var (_, timing, transfer) in results)
        {
            _ledger.AddQueueTime(timing.Queued);
            _ledger.RecordVerifierTransfer(batcher.Name, transfer);
        }

        return [.. results.Select(r => r.Score)];
    }
}
