using SearchOrchestrator.Search;

namespace SearchOrchestrator.Strategies;

/// <summary>
/// <c>search_over_paths</c>: N candidates are denoised to a starting step; then, repeatedly, each draws M
/// continuations renoised back Δf steps and denoised forward Δb steps (Δb &gt; Δf, so each round gains Δb − Δf), and the
/// top N by score survive, until the samples are clean (Ma et al., 2025, "Inference-Time Scaling for Diffusion Models
/// beyond Scaling Denoising Steps").
/// </summary>
public sealed class SearchOverPathsStrategy(int candidates, int continuations, int startStep, int forward, int backward) : ISearchStrategy
{
    /// <summary>N, candidates kept each round.</summary>
    public int Candidates { get; } = candidates;

    /// <summary>M, continuations per candidate per round.</summary>
    public int Continuations { get; } = continuations;

    /// <summary>The step the first candidates are denoised to.</summary>
    public int StartStep { get; } = startStep;

    /// <summary>Δf: steps each continuation is renoised back.</summary>
    public int Forward { get; } = forward;

    /// <summary>Δb: steps each continuation is then denoised.</summary>
    public int Backward { get; } = backward;

    /// <inheritdoc />
    public string Name => StrategyNames.SearchOverPaths;

    /// <inheritdoc />
    public bool NeedsVerifiers => true;

    /// <inheritdoc />
    public void Validate(int steps)
    {
        StrategyArguments.AtLeast(Name, "candidates", Candidates, 1);
        StrategyArguments.AtLeast(Name, "continuations", Continuations, 1);
        StrategyArguments.Within(Name, "start_step", StartStep, 1, steps);
        StrategyArguments.AtLeast(Name, "forward", Forward, 1);
        if (Backward <= Forward)
        {
            throw new InvalidRequestException("strategy.backward", $"{Name}: backward (Δb = {Backward}) must exceed forward (Δf = {Forward}) so every round gets closer to a clean sample.");
        }
    }

    /// <inheritdoc />
    public long PlannedNfe(int steps)
    {
        long nfe = (long)Candidates * StartStep;
        for (var step = StartStep; step < steps;)
        {
            var back = Math.Max(0, step - Forward);
            var next = Math.Min(steps, back + Backward);
            nfe += (long)Candidates * Continuations * (next - back);
            step = next;
        }

        return nfe;
    }

    /// <inheritdoc />
    public async Task<StrategyOutcome> RunAsync(TrajectoryTree tree, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(tree);
        var live = Enumerable.Range(0, Candidates).Select(_ => tree.CreateRoot()).ToList();
        await tree.AdvanceAsync(live, StartStep, cancellationToken).ConfigureAwait(false);
        live = [.. live.Where(n => n.StepIndex == StartStep)];
        var step = StartStep;
        while (step < tree.Steps && live.Count > 0)
        {
            var back = Math.Max(0, step - Forward);
            var next = Math.Min(tree.Steps, back + Backward);
            var children = live.SelectMany(n => Enumerable.Range(0, Continuations).Select(_ => tree.Renoise(n, back))).ToList();
            await tree.AdvanceAsync(children, next, cancellationToken).ConfigureAwait(false);
            var arrived = children.Where(c => c.StepIndex == next).ToList();
            var scored = await tree.VerifyAsync(arrived, cancellationToken).ConfigureAwait(false);
            if (scored.Count == 0)
            {
                break; // out of budget: the current candidates stand
            }

            var keep = scored.BestFirst().Take(Candidates).ToHashSet();
            foreach (var child in children.Where(c => !keep.Contains(c)))
            {
                tree.Prune(child);
            }

            live = [.. keep.OrderBy(n => n.Id)];
            step = next;
        }

        return new StrategyOutcome(live);
    }
}
