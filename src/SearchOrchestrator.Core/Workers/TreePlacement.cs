using SearchOrchestrator.Denoising;
using SearchOrchestrator.Search;

namespace SearchOrchestrator.Workers;

/// <summary>
/// The backends one search's model may run on (this process's, and the pool's workers and stateless backends that host the model) and the
/// choice between them for a group of nodes, by <see cref="PlacementPolicy"/>.
/// </summary>
public sealed class TreePlacement
{
    private readonly LocalBackend _local;
    private readonly string _model;
    private readonly double _guidance;

    /// <summary>Creates the placement of one search.</summary>
    public TreePlacement(LocalBackend local, WorkerPool pool, string model, double guidance)
    {
        ArgumentNullException.ThrowIfNull(local);
        ArgumentNullException.ThrowIfNull(pool);
        _local = local;
        Pool = pool;
        _model = model;
        _guidance = guidance;
    }

    /// <summary>The pool resident handles come from.</summary>
    public WorkerPool Pool { get; }

    /// <summary>True when workers keep node states resident.</summary>
    public bool Resident => Pool.Options.Mode == WorkerModes.Resident;

    /// <summary>The backends this search may use now, local first.</summary>
    public IEnumerable<IStepBackend> Backends(ISet<IStepBackend> exclude)
    {
        ArgumentNullException.ThrowIfNull(exclude);
        if (Pool.Options.UseLocal && !exclude.Contains(_local))
        {
            yield return _local;
        }

        foreach (var worker in Pool.Hosting(_model))
        {
            if (worker.IsAvailable && !exclude.Contains(worker))
            {
                yield return worker;
            }
        }
    }

    /// <summary>
    /// True when nodes resident on <paramref name="worker"/> should advance there: no other backend finishes
    /// <see cref="WorkerOptions.MoveMargin"/> sooner once fetching them over the worker's link is counted.
    /// </summary>
    internal bool Stays(IReadOnlyList<Node> nodes, WorkerBackend worker, int toStep, int elements, ISet<IStepBackend> exclude)
    {
        var costs = Costs(nodes, toStep, elements, exclude).Where(c => c.Backend.IsAvailable).ToList();
        var here = costs.FirstOrDefault(c => c.Backend == worker);
        var best = costs.Where(c => c.Backend != worker).MinBy(c => c.Total);
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
        // A stateless step ships the state in, and the new state and the x0-prediction back.
        var stepBytesPerRow = 3 * stateBytes / rowsPerNode;
        return Backends(exclude).Select(backend =>
        {
            var move = 0L;
            if (backend is WorkerBackend && Resident)
            {
                move = nodes.Where(n => n.Residence?.Worker != backend).Sum(n => n.IsKeyPrior && n.StepIndex == 0 ? 0 : 2 * stateBytes);
            }

            // A model server's pass ships every row in (both rows of a guided step) and each row's prediction back.
            var bytesPerRow = backend is IStatelessBackend ? 2 * stateBytes : stepBytesPerRow;
            var cost = PlacementPolicy.Estimate(backend, rows, steps, bytesPerRow, move, backend is WorkerBackend && Resident);
            // Nodes resident on another worker must first be fetched over that worker's link (state and prediction).
            var fetch = nodes
                .Where(n => !n.IsLocal && n.Residence is { } r && r.Worker != backend && r.Worker.Link is not null)
                .GroupBy(n => n.Residence!.Worker)
                .Aggregate(TimeSpan.Zero, (total, g) => total + g.Key.Link!.Predict(2 * stateBytes * g.Count()));
            return cost with { Transfer = cost.Transfer + fetch };
        });
    }

    /// <summary>A backend to recompute lost nodes on, step by step: this process's if allowed, else a worker.</summary>
    internal IStepBackend ChooseForReplay(ISet<IStepBackend> exclude) =>
        Backends(exclude).FirstOrDefault()
        ?? throw new NoBackendException($"No backend is available to recompute nodes a failed worker held: every worker is out of rotation or has failed this search, and local compute is off (Workers:UseLocal).{LastFailures()}");

    private string LastFailures() =>
        string.Concat(Pool.Hosting(_model)
            .Select(b => (b.Name, Failure: b switch { WorkerBackend w => w.LastFailure, IStatelessBackend s => s.LastFailure, _ => null }))
            .Where(b => b.Failure is not null)
            .Select(b => $" {b.Name}: {b.Failure}"));
}
