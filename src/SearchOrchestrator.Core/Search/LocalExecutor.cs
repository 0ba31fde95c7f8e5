using SearchOrchestrator.Processes;
using SearchOrchestrator.Scheduling;
using SearchOrchestrator.Workers;

namespace SearchOrchestrator.Search;

/// <summary>
/// The executor of a search that runs everything in this process: every node state lives here, steps go to this
/// process's denoiser batcher, verifications to its verifier batchers. The only path when there are no remote backends;
/// <see cref="PlacedExecutor"/> uses it for what it runs here.
/// </summary>
internal sealed class LocalExecutor(ExecutorSettings settings) : ITreeExecutor
{
    /// <inheritdoc />
    public void Branch(Node parent, IReadOnlyList<Node> children)
    {
        var steps = settings.Steps;
        foreach (var child in children)
        {
            var prediction = (float[]?)parent.PredictionOrNull?.Clone();
            child.SetLocal(NodeStates.Start(child.Origin, steps.Sampler, steps.Schedule, parent.MutableState, parent.StepIndex, child.StartStep, child.Key), prediction);
            child.HasPrediction = prediction is not null;
        }
    }

    /// <inheritdoc />
    public Task AdvanceAsync(IReadOnlyList<Node> nodes, int toStep, CancellationToken cancellationToken) =>
        StepLoop.RunAsync(nodes, settings.Denoiser, node => StepHereAsync(node, toStep, async request => new StepOutcome(await settings.Denoiser.StepAsync(request, cancellationToken).ConfigureAwait(false), default), cancellationToken));

    /// <inheritdoc />
    public Task MaterializeAsync(IReadOnlyList<Node> nodes, CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Every node is here: nothing is decoded elsewhere.</summary>
    public Task<IReadOnlyDictionary<Node, float[]>> DecodeWhereResidentAsync(string model, IReadOnlyList<Node> nodes, CancellationToken cancellationToken) =>
        Task.FromResult<IReadOnlyDictionary<Node, float[]>>(new Dictionary<Node, float[]>());

    /// <inheritdoc />
    public async Task<float[]> ScoreAsync(string verifier, VerifierBatcher batcher, IReadOnlyList<Node> nodes, CancellationToken cancellationToken)
    {
        var scores = new float[nodes.Count];
        await ScoreHereAsync(batcher, nodes, [.. Enumerable.Range(0, nodes.Count)], scores, cancellationToken).ConfigureAwait(false);
        return scores;
    }

    /// <inheritdoc />
    public void Release(IReadOnlyList<Node> nodes)
    {
    }

    /// <summary>Steps a node held here to <paramref name="toStep"/> through <paramref name="step"/>, its state moving in place, counting each step.</summary>
    internal async Task StepHereAsync(Node node, int toStep, Func<StepRequest, Task<StepOutcome>> step, CancellationToken cancellationToken)
    {
        var ledger = settings.Ledger;
        await settings.Steps.AdvanceAsync(node.Key, node.MutableState, node.PredictionBuffer, node.StepIndex, toStep, step, (reached, outcome) =>
        {
            cancellationToken.ThrowIfCancellationRequested();
            node.MoveTo(reached, here: true);
            ledger.AddNfe(1);
            ledger.RecordStep(null, outcome);
        }).ConfigureAwait(false);
        ledger.Record(new TreeEvent(TreeEventKind.Advanced, node.Id, node.Path, node.StepIndex));
    }

    /// <summary>
    /// Scores the nodes at <paramref name="indices"/> (held here) into <paramref name="scores"/>, each with the model time
    /// its x0-prediction was made at (its last step's), counting what a remote verifier moved for them.
    /// </summary>
    internal async Task ScoreHereAsync(VerifierBatcher batcher, IReadOnlyList<Node> nodes, IReadOnlyList<int> indices, float[] scores, CancellationToken cancellationToken)
    {
        var shape = settings.Shape;
        var schedule = settings.Steps.Schedule;
        var results = await Task.WhenAll(indices.Select(i =>
        {
            var sample = nodes[i].Prediction!.Value[..shape.ElementCount].ToArray();
            return batcher.ScoreAsync(
                shape,
                sample,
                settings.Condition,
                nodes[i].StepIndex > 0 ? (float)schedule.TimestepAt(nodes[i].StepIndex - 1) : null,
                settings.Text?.Invoke(sample),
                cancellationToken);
        })).ConfigureAwait(false);
        for (var j = 0; j < indices.Count; j++)
        {
            scores[indices[j]] = results[j].Score;
            settings.Ledger.AddQueueTime(results[j].Timing.Queued);
            settings.Ledger.RecordVerifierTransfer(batcher.Name, results[j].Transfer);
        }
    }
}
