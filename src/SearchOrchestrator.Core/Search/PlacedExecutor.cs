using SearchOrchestrator.Denoising;
using SearchOrchestrator.Processes;
using SearchOrchestrator.Scheduling;
using SearchOrchestrator.Workers;

namespace SearchOrchestrator.Search;

/// <summary>
/// The executor of a search whose steps may run on remote backends. It owns placement (each group of nodes goes where
/// it finishes soonest once moving it is counted; children stay where their parent's state lives), residency (one
/// <see cref="Residency"/> per node kept on a backend with resident states, at most one fetch of it in flight),
/// remote scoring (resident nodes are scored where they live when that backend hosts the verifier) and replay (what a
/// failed backend held is recomputed from the nearest copy this process holds). What runs here goes through
/// <see cref="LocalExecutor"/>.
/// </summary>
internal sealed class PlacedExecutor : ITreeExecutor
{
    /// <summary>
    /// About how long one Advance call of a resident multi-step advance runs on its backend (the progress interval of a
    /// stream): a long advance goes in slices of steps that take about this long, so progress moves while it runs.
    /// </summary>
    internal static readonly TimeSpan RemoteAdvanceSlice = TimeSpan.FromMilliseconds(100);

    private readonly ExecutorSettings _settings;
    private readonly LocalExecutor _local;
    private readonly TreePlacement _placement;
    private readonly TrajectorySettings _trajectory;
    private readonly TreeLedger _ledger;
    private readonly object _gate = new();

    public PlacedExecutor(ExecutorSettings settings, TreePlacement placement, TrajectorySettings trajectory)
    {
        _settings = settings;
        _local = new LocalExecutor(settings);
        _placement = placement;
        _trajectory = trajectory;
        _ledger = settings.Ledger;
    }

    /// <inheritdoc />
    public void Branch(Node parent, IReadOnlyList<Node> children)
    {
        if (parent.IsLocal || parent.Residency is not { } resident)
        {
            _local.Branch(parent, children);
            return;
        }

        // The parent lives on a backend: its children are made there too, and nothing moves.
        var specs = new List<ResidentChild>(children.Count);
        foreach (var child in children)
        {
            child.Residency = new Residency(resident.Backend, resident.States, _placement.Pool.NextHandle());
            child.HasPrediction = parent.HasPrediction;
            specs.Add(new ResidentChild(child.Residency.Handle, child.Key, child.Origin, child.StartStep));
        }

        var ready = RemoteForkAsync(resident, specs);
        resident.Ready = ready;
        foreach (var child in children)
        {
            child.Residency!.Ready = ready;
        }
    }

    /// <inheritdoc />
    public Task AdvanceAsync(IReadOnlyList<Node> nodes, int toStep, CancellationToken cancellationToken) =>
        AdvancePlacedAsync(nodes, toStep, [], cancellationToken);

    /// <summary>
    /// Fetches every node resident on a backend (or, when the backend is gone, recomputes it by replay). A node whose
    /// fetch is already in flight waits for that one: concurrent callers (the verifiers of one verification) share it.
    /// </summary>
    public Task MaterializeAsync(IReadOnlyList<Node> nodes, CancellationToken cancellationToken)
    {
        var pending = new List<Task>();
        lock (_gate)
        {
            foreach (var group in nodes.Where(n => !n.IsPruned && !n.IsLocal).Distinct().GroupBy(n => n.Residency?.Backend))
            {
                var fresh = new List<Node>();
                foreach (var node in group)
                {
                    if (node.Residency?.Fetch is { IsCompleted: false } inFlight)
                    {
                        pending.Add(inFlight);
                    }
                    else
                    {
                        fresh.Add(node);
                    }
                }

                if (fresh.Count > 0)
                {
                    var residencies = fresh.Select(n => n.Residency).ToList();
                    // Started on the pool, so nothing of it runs under the lock.
                    var fetch = Task.Run(() => FetchOrRecoverAsync(fresh, residencies, cancellationToken), CancellationToken.None);
                    foreach (var residency in residencies.OfType<Residency>())
                    {
                        residency.Fetch = fetch;
                    }

                    pending.Add(fetch);
                }
            }
        }

        return Task.WhenAll(pending).WaitAsync(cancellationToken);
    }

    /// <summary>
    /// Verification runs where its inputs are: nodes resident on a backend that hosts <paramref name="verifier"/> are
    /// scored there by handle (nothing but scores moves); the rest are fetched and scored here.
    /// </summary>
    public async Task<float[]> ScoreAsync(string verifier, VerifierBatcher batcher, IReadOnlyList<Node> nodes, CancellationToken cancellationToken)
    {
        var scores = new float[nodes.Count];
        var here = new List<int>();
        var remote = new Dictionary<IStepBackend, List<int>>();
        for (var i = 0; i < nodes.Count; i++)
        {
            if (!nodes[i].IsLocal && nodes[i].Residency is { } r && r.Backend.IsAvailable && r.States.Hosts(verifier))
            {
                (remote.TryGetValue(r.Backend, out var list) ? list : remote[r.Backend] = []).Add(i);
            }
            else
            {
                here.Add(i);
            }
        }

        foreach (var (backend, indices) in remote)
        {
            try
            {
                var residencies = indices.Select(i => nodes[i].Residency!).ToList();
                await Task.WhenAll(residencies.Select(r => r.Ready)).ConfigureAwait(false);
                var (remoteScores, transfer) = await residencies[0].States.VerifyResidentAsync(verifier, _settings.Condition, [.. residencies.Select(r => r.Handle)], cancellationToken).ConfigureAwait(false);
                _ledger.RecordTransfer(backend, transfer, StageNames.Verifier);
                _ledger.RecordVerifierTransfer(verifier, transfer);
                for (var j = 0; j < indices.Count; j++)
                {
                    scores[indices[j]] = remoteScores[j];
                }
            }
            catch (Exception ex) when (IsBackendFault(ex, cancellationToken))
            {
                Failed(backend, "verifying", ex);
                here.AddRange(indices); // fetched or recomputed, then scored here
            }
        }

        await MaterializeAsync([.. here.Select(i => nodes[i])], cancellationToken).ConfigureAwait(false);
        await _local.ScoreHereAsync(batcher, nodes, here, scores, cancellationToken).ConfigureAwait(false);
        return scores;
    }

    /// <summary>
    /// Nodes resident on a backend that serves the pipeline's decoder are decoded there by handle, one call per backend
    /// (its traffic counted under <see cref="StageNames.Decoder"/>); a backend that fails leaves its nodes to the caller.
    /// </summary>
    public async Task<IReadOnlyDictionary<Node, float[]>> DecodeWhereResidentAsync(string model, IReadOnlyList<Node> nodes, CancellationToken cancellationToken)
    {
        var images = new Dictionary<Node, float[]>();
        if (_placement.Pool.Options.DecoderPlacement == DecoderPlacements.Local)
        {
            return images;
        }

        var there = nodes.Distinct().Where(n => !n.IsLocal && n.Residency is { Backend: IDecoderBackend { IsAvailable: true } backend } && backend.ServesStage(model, StageNames.Decoder));
        foreach (var group in there.GroupBy(n => n.Residency!.Backend))
        {
            var list = group.ToList();
            var residencies = list.Select(n => n.Residency!).ToList();
            try
            {
                await Task.WhenAll(residencies.Select(r => r.Ready)).ConfigureAwait(false);
                var (decoded, transfer) = await residencies[0].States.DecodeResidentAsync(model, [.. residencies.Select(r => r.Handle)], cancellationToken).ConfigureAwait(false);
                _ledger.RecordTransfer(group.Key, transfer, StageNames.Decoder);
                for (var i = 0; i < list.Count; i++)
                {
                    images[list[i]] = decoded[i];
                }
            }
            catch (Exception ex) when (IsBackendFault(ex, cancellationToken))
            {
                Failed(group.Key, "decoding", ex);
            }
        }

        return images;
    }

    /// <summary>Drops the nodes' copies on backends (after their pending remote operations; observed, never awaited).</summary>
    public void Release(IReadOnlyList<Node> nodes)
    {
        foreach (var group in nodes.Where(n => n.Residency is not null).GroupBy(n => n.Residency!.Backend))
        {
            var residencies = group.Select(n => n.Residency!).ToList();
            foreach (var node in group)
            {
                node.Residency = null;
            }

            _ = ReleaseAfterAsync(group.Key, residencies);
        }
    }

    private static bool IsBackendFault(Exception ex, CancellationToken cancellationToken) =>
        !cancellationToken.IsCancellationRequested && ex is WorkerUnavailableException or WorkerDataException;

    /// <summary>
    /// Advances placed nodes: nodes resident on a backend in rotation stay there (children stay where their parent's
    /// state lives); the others go, together, to the backend where the group finishes soonest once moving it is counted.
    /// </summary>
    private async Task AdvancePlacedAsync(IReadOnlyList<Node> nodes, int toStep, HashSet<IStepBackend> exclude, CancellationToken cancellationToken)
    {
        if (nodes.Count == 0)
        {
            return;
        }

        var tasks = new List<Task>();
        var rest = new List<Node>();
        foreach (var group in nodes.GroupBy(n => n.IsLocal ? null : n.Residency?.Backend))
        {
            // Resident nodes stay where their state lives unless moving them (a fetch over that backend's link) and
            // running elsewhere finishes sooner.
            if (group.Key is { } backend && backend.IsAvailable && !exclude.Contains(backend)
                && _placement.Stays([.. group], backend, toStep, _settings.Elements, exclude))
            {
                tasks.Add(AdvanceResidentAsync(backend, [.. group], toStep, exclude, cancellationToken));
            }
            else
            {
                rest.AddRange(group);
            }
        }

        if (rest.Count > 0)
        {
            // Nodes leaving a backend that is still up are fetched from it (recomputed only if it is gone).
            await MaterializeAsync([.. rest.Where(n => !n.IsLocal && n.Residency?.Backend.IsAvailable == true)], cancellationToken).ConfigureAwait(false);
            var backend = _placement.Choose(rest, toStep, _settings.Elements, exclude);
            tasks.Add(backend.ResidentStates is not null
                ? AdvanceResidentAsync(backend, rest, toStep, exclude, cancellationToken)
                : AdvanceSteppedAsync(rest, toStep, backend, exclude, cancellationToken));
        }

        await Task.WhenAll(tasks).ConfigureAwait(false);
    }

    /// <summary>
    /// Advances nodes on a backend that keeps them resident: puts the ones it does not hold yet (a root's prior is drawn
    /// there from its key), then one Advance call per slice ships only their handles. If the backend fails, each node is
    /// recovered (from the copy put moments ago, or by replay) and advanced elsewhere.
    /// </summary>
    private async Task AdvanceResidentAsync(IStepBackend backend, List<Node> nodes, int toStep, HashSet<IStepBackend> exclude, CancellationToken cancellationToken)
    {
        var states = backend.ResidentStates!;
        try
        {
            await Task.WhenAll(nodes.Select(n => n.Residency?.Ready ?? Task.CompletedTask)).ConfigureAwait(false);
            var toPut = nodes.Where(n => n.Residency?.Backend != backend).ToList();
            if (toPut.Count > 0)
            {
                foreach (var node in toPut.Where(n => !n.IsLocal))
                {
                    await RecoverAsync(node, [.. exclude, backend], cancellationToken).ConfigureAwait(false);
                }

                var residencies = toPut.Select(_ => new Residency(backend, states, _placement.Pool.NextHandle())).ToList();
                var put = toPut.Select((n, i) => n.IsKeyPrior && n.StepIndex == 0
                    ? new ResidentState(residencies[i].Handle, n.Key, 0, null, null, FromPrior: true)
                    : new ResidentState(residencies[i].Handle, n.Key, n.StepIndex, n.MutableState, n.PredictionOrNull)).ToList();
                _ledger.RecordTransfer(backend, await states.PutAsync(_trajectory, put, cancellationToken).ConfigureAwait(false));
                Release(toPut);
                for (var i = 0; i < toPut.Count; i++)
                {
                    toPut[i].Residency = residencies[i];
                }
            }

            var rowsPerNode = ClassifierFreeGuidance.NeedsUnconditional(_settings.Steps.Guidance) ? 2 : 1;
            // One Advance per slice of steps the backend runs in about RemoteAdvanceSlice, so the search's progress (NFE,
            // deepest step, events) moves while a long advance runs there instead of jumping at its end; a slice costs
            // one round trip of ids.
            var perStep = backend.Compute.Predict(Math.Min(nodes.Count * rowsPerNode, backend.MaxBatchSize));
            var slice = (int)Math.Clamp(RemoteAdvanceSlice.Ticks / Math.Max(1, perStep.Ticks), 1, int.MaxValue);
            var target = nodes.Min(n => n.StepIndex);
            do
            {
                target = (int)Math.Min(toStep, (long)target + slice);
                var moving = nodes.Where(n => n.StepIndex < target || target == toStep).ToList();
                var (transfer, passes) = await states.AdvanceAsync([.. moving.Select(n => n.Residency!.Handle)], target, target - moving.Min(n => n.StepIndex), moving.Count * rowsPerNode, cancellationToken).ConfigureAwait(false);
                _ledger.RecordTransfer(backend, transfer);
                _ledger.RecordPasses(backend.Name, passes);
                foreach (var node in moving)
                {
                    _ledger.AddNfe(target - node.StepIndex);
                    node.MoveTo(target, here: false);
                    _ledger.Record(new TreeEvent(TreeEventKind.Advanced, node.Id, node.Path, node.StepIndex));
                }
            }
            while (target < toStep);
        }
        catch (Exception ex) when (IsBackendFault(ex, cancellationToken))
        {
            Failed(backend, "advancing resident nodes", ex);
            HashSet<IStepBackend> next = [.. exclude, backend];
            Release([.. nodes.Where(n => n.Residency?.Backend == backend)]);
            foreach (var node in nodes.Where(n => !n.IsLocal))
            {
                await RecoverAsync(node, next, cancellationToken).ConfigureAwait(false);
            }

            await AdvancePlacedAsync(nodes, toStep, next, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Advances nodes step by step on <paramref name="backend"/>, their states held here and moved each step; a step
    /// whose backend fails runs again on the next one placement chooses for that node.
    /// </summary>
    private Task AdvanceSteppedAsync(IReadOnlyList<Node> nodes, int toStep, IStepBackend backend, HashSet<IStepBackend> exclude, CancellationToken cancellationToken) =>
        StepLoop.RunAsync(nodes, ProducerOf(backend), async node =>
        {
            if (!node.IsLocal)
            {
                await RecoverAsync(node, exclude, cancellationToken).ConfigureAwait(false);
            }
            else
            {
                Release([node]); // the copy here is current; a backend's copy would go stale
            }

            var stepper = new FailoverStepper(this, backend, exclude, without => _placement.Choose([node], toStep, _settings.Elements, without), cancellationToken);
            await _local.StepHereAsync(node, toStep, stepper.StepAsync, cancellationToken).ConfigureAwait(false);
        });

    /// <summary>This process's batcher when <paramref name="backend"/> is this process (its step loops register as producers).</summary>
    private DenoiserBatcher? ProducerOf(IStepBackend backend) => backend == _placement.Local ? _settings.Denoiser : null;

    /// <summary>Fetches nodes resident on one backend in one call; what cannot be fetched is recomputed by replay.</summary>
    private async Task FetchOrRecoverAsync(List<Node> nodes, List<Residency?> residencies, CancellationToken cancellationToken)
    {
        HashSet<IStepBackend> exclude = [];
        if (residencies[0] is { } first)
        {
            exclude.Add(first.Backend);
            try
            {
                await Task.WhenAll(residencies.Select(r => r!.Ready)).ConfigureAwait(false);
                var (fetched, transfer) = await first.States.FetchAsync([.. residencies.Select(r => r!.Handle)], cancellationToken).ConfigureAwait(false);
                _ledger.RecordTransfer(first.Backend, transfer);
                for (var i = 0; i < nodes.Count; i++)
                {
                    var got = fetched[i];
                    var elements = _settings.Elements;
                    if (got.StepIndex != nodes[i].StepIndex || got.State?.Length != elements || (got.Prediction is { Length: > 0 } p && p.Length != elements))
                    {
                        throw new WorkerDataException(first.Backend.Name, $"node {got.Handle} came back at step {got.StepIndex} with {got.State?.Length ?? 0} values; expected step {nodes[i].StepIndex} and {elements}.");
                    }

                    nodes[i].SetLocal(got.State, got.Prediction is { Length: > 0 } prediction ? prediction : null);
                }

                return;
            }
            catch (Exception ex) when (IsBackendFault(ex, cancellationToken))
            {
                Failed(first.Backend, "fetching", ex); // recomputed below
            }
        }

        foreach (var node in nodes.Where(n => !n.IsLocal))
        {
            await RecoverAsync(node, exclude, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Makes a node whose backend failed local again: its state recomputed by replay, its residency dropped.</summary>
    private async Task RecoverAsync(Node node, HashSet<IStepBackend> exclude, CancellationToken cancellationToken)
    {
        var (state, prediction, nfe) = await ReplayAsync(node, node.StepIndex, exclude, cancellationToken).ConfigureAwait(false);
        node.Residency = null;
        node.SetLocal(state, prediction);
        TreeLog.Replayed(_ledger.Logger, node.Id, node.Path, node.StepIndex, nfe);
    }

    /// <summary>
    /// The state and x0-prediction <paramref name="node"/> had at <paramref name="step"/>, recomputed from the nearest
    /// copy this process holds: the node's own checkpoint, else its parent's state where it branched off (recursively;
    /// a root's prior is always held). Every draw is keyed by the node's path, so the replay is exact. Its NFE is
    /// reported as <see cref="CostAccount.ReplayNfe"/>, outside the budget.
    /// </summary>
    private async Task<(float[] State, float[]? Prediction, int Nfe)> ReplayAsync(Node node, int step, HashSet<IStepBackend> exclude, CancellationToken cancellationToken)
    {
        float[] state;
        float[]? prediction;
        int at;
        var nfe = 0;
        if (node.Checkpoint is { } checkpoint && checkpoint.Step <= step)
        {
            (state, prediction, at) = ((float[])checkpoint.State.Clone(), (float[]?)checkpoint.Prediction?.Clone(), checkpoint.Step);
        }
        else if (node.Parent is null)
        {
            (state, prediction, at) = ((float[]?)node.Prior?.Clone() ?? NodeStates.Prior(_settings.Steps.Sampler, node.Key, _settings.Elements), null, 0);
        }
        else
        {
            (var parentState, prediction, nfe) = await ReplayAsync(node.Parent, node.BranchStep, exclude, cancellationToken).ConfigureAwait(false);
            state = NodeStates.Start(node.Origin, _settings.Steps.Sampler, _settings.Steps.Schedule, parentState, node.BranchStep, node.StartStep, node.Key);
            at = node.StartStep;
        }

        if (at < step)
        {
            var buffer = prediction ??= new float[state.Length];
            var stepper = new FailoverStepper(this, _placement.ChooseForReplay(exclude), exclude, _placement.ChooseForReplay, cancellationToken);
            await StepLoop.RunAsync([node], ProducerOf(stepper.Backend), _ => _settings.Steps.AdvanceAsync(node.Key, state, buffer, at, step, stepper.StepAsync, (_, outcome) =>
            {
                _ledger.RecordStep(null, outcome);
                _ledger.AddReplayStep();
            })).ConfigureAwait(false);
            nfe += step - at;
        }

        return (state, prediction, nfe);
    }

    /// <summary>Creates resident children on the parent's backend once the parent's earlier remote operations are done.</summary>
    private async Task RemoteForkAsync(Residency parent, IReadOnlyList<ResidentChild> children)
    {
        await parent.Ready.ConfigureAwait(false);
        _ledger.RecordTransfer(parent.Backend, await parent.States.ForkAsync(parent.Handle, children).ConfigureAwait(false));
    }

    private async Task ReleaseAfterAsync(IStepBackend backend, IReadOnlyList<Residency> residencies)
    {
        try
        {
            try
            {
                await Task.WhenAll(residencies.Select(r => r.Ready)).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is WorkerUnavailableException or WorkerDataException or OperationCanceledException)
            {
                return; // nothing was made there, or the backend is gone
            }

            await residencies[0].States.ReleaseAsync([.. residencies.Select(r => r.Handle)]).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            TreeLog.ReleaseFailed(_ledger.Logger, ex, backend.Name, residencies.Count);
        }
    }

    private void Failed(IStepBackend backend, string operation, Exception error) => TreeLog.BackendFailed(_ledger.Logger, backend.Name, operation, error.Message);

    /// <summary>
    /// Runs steps on a backend and, when it fails (a failed remote step leaves the state untouched), again on the next
    /// one chosen without it.
    /// </summary>
    private sealed class FailoverStepper(PlacedExecutor owner, IStepBackend backend, IEnumerable<IStepBackend> exclude, Func<ISet<IStepBackend>, IStepBackend> next, CancellationToken cancellationToken)
    {
        private readonly HashSet<IStepBackend> _exclude = [.. exclude];

        public IStepBackend Backend { get; private set; } = backend;

        public async Task<StepOutcome> StepAsync(StepRequest request)
        {
            while (true)
            {
                var backend = Backend;
                try
                {
                    var outcome = await backend.StepAsync(request, owner._trajectory, cancellationToken).ConfigureAwait(false);
                    owner._ledger.RecordTransfer(backend, outcome.Transfer);
                    owner._ledger.AddEncoding(outcome.Encoding.Calls, outcome.Encoding.Hits);
                    return outcome;
                }
                catch (Exception ex) when (IsBackendFault(ex, cancellationToken))
                {
                    owner.Failed(backend, "stepping", ex);
                    _exclude.Add(backend);
                    Backend = next(_exclude);
                }
            }
        }
    }
}
