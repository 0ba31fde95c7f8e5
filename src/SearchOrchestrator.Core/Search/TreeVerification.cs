using SearchOrchestrator.Scheduling;
using SearchOrchestrator.Verifiers;
using SearchOrchestrator.Workers;

namespace SearchOrchestrator.Search;

/// <summary>
/// How one tree scores its nodes: the verifiers of its ensemble (scored through the executor where a node's state lives,
/// or on decoded images for a pipeline's pixel verifiers), the verifier-call budget, the leave-out of failed remote
/// verifiers, and the pipeline's decoder. <see cref="TrajectoryTree.VerifyAsync"/> is its only caller besides the engine's
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

    public TreeVerification(TreeSettings settings)
    {
        _verifiers = settings.Verifiers;
        _ensemble = settings.Ensemble;
        _leaveOutFailedVerifiers = settings.LeaveOutFailedVerifiers;
        _executor = settings.Executor;
        _ledger = settings.Ledger;
        _condition = settings.Condition;
        Decoding = settings.Decoding;
    }

    /// <summary>A pipeline's decoder and which verifiers score its images; null for other models.</summary>
    public TreeDecoding? Decoding { get; }

    /// <inheritdoc cref="TrajectoryTree.VerifyAsync"/>
    public async Task<IReadOnlyList<Node>> VerifyAsync(IReadOnlyList<Node> nodes, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(nodes);
        if (_verifiers.Count == 0)
        {
            throw new InvalidOperationException("This search has no verifiers to score with.");
        }

        var active = Enumerable.Range(0, _verifiers.Count).Where(v => !_ledger.IsLeftOut(_ensemble.Verifiers[v])).ToList();
        var names = active.Select(v => _ensemble.Verifiers[v]).ToList();
        var scored = new List<Node>(nodes.Count);
        foreach (var node in nodes)
        {
            TrajectoryTree.RequireLive(node);
            if (!node.HasPrediction)
            {
                throw new InvalidOperationException($"{node} has no x0-prediction yet; advance it at least one step before verifying.");
            }

            var decoderCalls = Decoding is { AnyPixels: true } && node.Pixels is null && !scored.Contains(node) ? 1 : 0;
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

        if (Decoding is { AnyPixels: true })
        {
            await DecodeAsync(scored, cancellationToken).ConfigureAwait(false);
        }

        var results = await Task.WhenAll(active.Select(v => ScoreOrLeaveOutAsync(v, scored, cancellationToken))).ConfigureAwait(false);
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
    /// Decodes the x0-predictions of the nodes not yet decoded at their step (a pipeline's; held here) and keeps the images
    /// with the nodes. The caller has counted the decoder calls.
    /// </summary>
    public async Task DecodeAsync(IReadOnlyList<Node> nodes, CancellationToken cancellationToken)
    {
        var decoding = Decoding ?? throw new InvalidOperationException("This search has no decoder.");
        var latent = decoding.Decoder.Description.LatentShape.ElementCount;
        var pending = nodes.Where(n => n.Pixels is null).Distinct().ToList();
        var images = await Task.WhenAll(pending.Select(n => decoding.Decoder.DecodeAsync(n.Prediction!.Value[..latent], cancellationToken))).ConfigureAwait(false);
        for (var i = 0; i < pending.Count; i++)
        {
            pending[i].SetPixels(images[i].Image);
            _ledger.AddQueueTime(images[i].Timing.Queued);
        }
    }

    /// <summary>Scores with verifier <paramref name="v"/>; null when it failed and was left out (a remote one, and the request allows it).</summary>
    private async Task<float[]?> ScoreOrLeaveOutAsync(int v, IReadOnlyList<Node> nodes, CancellationToken cancellationToken)
    {
        var batcher = _verifiers[v];
        try
        {
            return Decoding is { } decoding && decoding.PixelVerifiers[v]
                ? await ScorePixelsAsync(batcher, nodes, cancellationToken).ConfigureAwait(false)
                : await _executor.ScoreAsync(batcher.Name, batcher, nodes, cancellationToken).ConfigureAwait(false);
        }
        catch (VerifierFailedException ex) when (_leaveOutFailedVerifiers && batcher.Kind is VerifierKinds.KServe or VerifierKinds.Worker && !cancellationToken.IsCancellationRequested)
        {
            _ledger.LeaveOut(batcher.Name, ex.Message);
            return null;
        }
    }

    /// <summary>Scores the nodes' decoded images with one verifier.</summary>
    private async Task<float[]> ScorePixelsAsync(VerifierBatcher batcher, IReadOnlyList<Node> nodes, CancellationToken cancellationToken)
    {
        var shape = Decoding!.Decoder.Description.ImageShape;
        // Decoded images are clean samples: a time-taking verifier gets no time for them.
        var results = await Task.WhenAll(nodes.Select(n => batcher.ScoreAsync(shape, n.Pixels!, _condition, time: null, cancellationToken))).ConfigureAwait(false);
        foreach (var (_, timing, transfer) in results)
        {
            _ledger.AddQueueTime(timing.Queued);
            _ledger.RecordVerifierTransfer(batcher.Name, transfer);
        }

        return [.. results.Select(r => r.Score)];
    }
}
