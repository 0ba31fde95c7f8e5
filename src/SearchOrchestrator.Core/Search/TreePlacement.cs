using SearchOrchestrator.Denoising;
using SearchOrchestrator.Workers;

namespace SearchOrchestrator.Search;

/// <summary>
/// The backends one search's model may run on (this process's, and the pool's backends that host the model) and the
/// choice between them for a group of nodes, by <see cref="PlacementPolicy"/>. It reads what each backend declares
/// (resident states, step traffic, link and compute models), never its type.
/// </summary>
internal sealed class TreePlacement
{
    private readonly string _model;
    private readonly double _guidance;

    /// <summary>Creates the placement of one search.</summary>
    public TreePlacement(LocalBackend local, WorkerPool pool, string model, double guidance)
    {
        ArgumentNullException.ThrowIfNull(local);
        ArgumentNullException.ThrowIfNull(pool);
        Local = local;
        Pool = pool;
        _model = model;
        _guidance = guidance;
    }

    /// <summary>This process's backend for the model.</summary>
    public LocalBackend Local { get; }

    /// <summary>The pool resident handles come from.</summary>
    public WorkerPool Pool { get; }

    /// <summary>The backends this search may use now, local first.</summary>
    public IEnumerable<IStepBackend> Backends(ISet<IStepBackend> exclude)
    {
        ArgumentNullException.ThrowIfNull(exclude);
        if (Pool.Options.UseLocal && !exclude.Contains(Local))
        {
            yield return Local;
        }

        foreach (var backend in Pool.Hosting(_model))
        {
            if (backend.IsAvailable && !exclude.Contains(backend))
            {
                yield return backend;
            }
        }
    }

    /// <summary>
    /// True when nodes resident on <paramref name="backend"/> should advance there: no other backend finishes
    /// <see cref="WorkerOptions.MoveMargin"/> sooner once fetching them over its link is counted.
    /// </summary>
    internal bool Stays(IReadOnlyList<Node> nodes, IStepBackend backend, int toStep, int elements, ISet<IStepBackend> exclude)
    {
        var costs = Costs(nodes, toStep, elements, exclude).Where(c => c.Backend.IsAvailable).ToList();
        var here = costs.FirstOrDefault(c => c.Backend == backend);
        var best = costs.Where(c => c.Backend != backend).MinBy(c => c.Total);
        return here is not null && (best is null || best.Total >= here.Total * (1 - Pool.Options.MoveMargin));
    }

    /// <summary>Where advancing <paramref name="nodes"/> to <paramref name="toStep"/> together finishes soonest.</summary>
    /// <exception cref="InvalidOperationException">No backend is available.</exception>
    internal IStepBackend Choose(IReadOnlyList<Node> nodes, int toStep, int elements, ISet<IStepBackend> exclude) =>
        PlacementPolicy.Choose(Costs(nodes, toStep, elements, exclude)).Backend;

    private IEnumerable<BackendCost> Costs(IReadOnlyList<Node> nodes, int toStep, int elements, ISet<IStepBackend> exclude)
    {
        var rowsPerNode = ClassifierFreeGuidance.NeedsUnconditional(_guidance) ? 2 : 1;
        var rows = nodes.Count * rowsPerNode;
        var steps = toStep - nodes.Min(n => n.StepIndex);
        var stateBytes = (long)elements * sizeof(float);
        return Backends(exclude).Select(backend =>
        {
            var resident = backend.ResidentStates is not null;
            // Nodes it does not hold yet are put there first (a root's prior is drawn there from its key).
            var move = resident ? nodes.Where(n => n.Residency?.Backend != backend).Sum(n => n.IsKeyPrior && n.StepIndex == 0 ? 0 : 2 * stateBytes) : 0L;
            var cost = PlacementPolicy.Estimate(backend, rows, steps, backend.StepTraffic.BytesPerRow(stateBytes, rowsPerNode), move, resident);
            // Nodes resident on another backend must first be fetched over that backend's link (state and prediction).
            var fetch = nodes
                .Where(n => !n.IsLocal && n.Residency is { } r && r.Backend != backend && r.Backend.Link is not null)
                .GroupBy(n => n.Residency!.Backend)
                .Aggregate(TimeSpan.Zero, (total, g) => total + g.Key.Link!.Predict(2 * stateBytes * g.Count()));
            return cost with { Transfer = cost.Transfer + fetch };
        });
    }

    /// <summary>A backend to recompute lost nodes on, step by step: this process's if allowed, else a worker.</summary>
    internal IStepBackend ChooseForReplay(ISet<IStepBackend> exclude) =>
        Backends(exclude).FirstOrDefault()
        ?? throw new NoBackendException($"No backend is available to recompute nodes a failed worker held: every worker is out of rotation or has failed this search, and local compute is off (Workers:UseLocal).{LastFailures()}");

    private string LastFailures() =>
        string.Concat(Pool.Hosting(_model).Where(b => b.LastFailure is not null).Select(b => $" {b.Name}: {b.LastFailure}"));
}
