using SearchOrchestrator.Search;

namespace SearchOrchestrator.Strategies;

/// <summary>How <see cref="FkSteeringStrategy"/> turns a particle's rewards so far into its potential.</summary>
public enum FkPotential
{
    /// <summary>The highest reward seen along the path.</summary>
    Max,

    /// <summary>The change in reward since the previous resampling step.</summary>
    Difference,

    /// <summary>The sum of rewards along the path.</summary>
    Sum,

    /// <summary>The current reward only.</summary>
    Immediate,
}

/// <summary>How <see cref="FkSteeringStrategy"/> draws the k particles that carry on from their weights.</summary>
public enum FkResampling
{
    /// <summary>k independent draws: a particle of weight w gets Binomial(k, w) copies.</summary>
    Multinomial,

    /// <summary>One draw u, then the points (i + u)/k: a particle of weight w gets ⌊k·w⌋ or ⌈k·w⌉ copies (less resampling noise).</summary>
    Systematic,
}

/// <summary>
/// <c>fk_steering</c>: k particles with potentials G = exp(λ·f(rewards)); at every resampling step the particles are
/// resampled in proportion to G (multinomially, or systematically: <see cref="FkResampling"/>), optionally only when the effective sample size falls below k/2
/// (Singhal et al., 2025, "A General Framework for Inference-time Scaling and Steering of Diffusion Models",
/// Feynman–Kac steering). Resampling draws the tree's uniforms (<see cref="ISearchTree.FillUniform"/>), so it is deterministic.
/// </summary>
/// <param name="Particles">k, the particles.</param>
/// <param name="Potential">The potential.</param>
/// <param name="Lambda">λ, the inverse temperature of the potential.</param>
/// <param name="ResampleEvery">Steps between resampling steps.</param>
/// <param name="Adaptive">Resample only when the effective sample size is below k/2.</param>
/// <param name="PreviewSteps">j of the rewards' previews; null: the request's.</param>
public sealed record FkSteeringStrategy(int Particles, FkPotential Potential, double Lambda, int ResampleEvery, bool Adaptive, int? PreviewSteps = null) : ISearchStrategy<FkSteeringStrategy>
{
    /// <inheritdoc />
    public static StrategyDefinition Definition { get; } = new(
        StrategyNames.FkSteering,
        "k particles resampled in proportion to potentials exp(λ·f(rewards)) (Feynman–Kac steering). Its defaults (4 particles resampled every N/5 on the current reward, λ = 10, raw x0-predictions) were tuned on the counting bench, where it still loses to best_of_n at equal NFE (held out, 144 searches: 73.6% against 77.8% at 4×; systematic resampling did no better on the tuning seeds; BENCHMARKS.md 3b).",
        [
            new("particles", "4", "k, the particles"),
            new("potential", "immediate|max|difference|sum", "f: the current reward, the highest, the change in, or the sum of the rewards"),
            new("lambda", "10", "λ, the inverse temperature of the potential"),
            new("resample_every", "N/5", "steps between resampling steps"),
            new("adaptive", "false", "resample only when the effective sample size is below k/2"),
            new("resampling", "multinomial|systematic", "k independent draws, or one draw spread over k evenly spaced points (a particle of weight w keeps ⌊k·w⌋ or ⌈k·w⌉ copies)"),
            StrategyArguments.PreviewStepsParameter,
            StrategyArguments.RenoiseParameter,
        ],
        (p, steps) => new FkSteeringStrategy(
            p.Int("particles", 4),
            p.Enum("potential", FkPotential.Immediate),
            p.Double("lambda", 10),
            p.Int("resample_every", StrategyArguments.Fifth(steps)),
            p.Bool("adaptive", false),
            StrategyArguments.PreviewSteps(p))
        {
            RenoiseSteps = p.Int(StrategyArguments.RenoiseName, 0),
            Resampling = p.Enum("resampling", FkResampling.Multinomial),
        });

    /// <summary>Steps each fork renoises its children back under any sampler (<see cref="ISearchTree.Fork(ISearchNode, int, int)"/>); 0: plain forks.</summary>
    public int RenoiseSteps { get; init; }

    /// <summary>How the particles that carry on are drawn from the weights.</summary>
    public FkResampling Resampling { get; init; }

    /// <inheritdoc />
    public string Name => StrategyNames.FkSteering;

    /// <inheritdoc />
    public bool NeedsVerifiers => true;

    /// <inheritdoc />
    public void Validate(int steps)
    {
        StrategyArguments.AtLeast(Name, "particles", Particles, 1);
        StrategyArguments.Within(Name, "resample_every", ResampleEvery, 1, Math.Max(1, steps - 1));
        StrategyArguments.PreviewSteps(Name, PreviewSteps);
        StrategyArguments.AtLeast(Name, StrategyArguments.RenoiseName, RenoiseSteps, 0);
        if (!(Lambda >= 0 && double.IsFinite(Lambda)))
        {
            throw new InvalidRequestException("strategy.lambda", $"{Name}: lambda must be a finite number >= 0, got {Lambda}.");
        }
    }

    /// <summary>A range: k particles throughout; resampling forks the drawn ones (renoised under η = 0 or by <c>renoise</c>) and drops 0 … k − 1, depending on the potentials.</summary>
    public CostPlan Plan(PlanContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        long k = Particles, n = context.Steps, renoise = RenoiseSteps > 0 ? RenoiseSteps : context.ForkRenoiseSteps;
        var resamples = StrategyArguments.Every(ResampleEvery, context.Steps);
        long droppedMax = resamples.Sum(step => (k - 1) * (step + (renoise * resamples.Count)));
        var previews = resamples.Sum(step => k * context.PreviewNfe(PreviewSteps, step));
        return new(new NfeRange((k * n) + previews, (k * n) + (resamples.Count * k * renoise) + previews), new NfeRange((k * n) + previews, (k * (n + (renoise * resamples.Count))) + droppedMax + previews),
            $"adaptive: {k} particles for {n} steps; which the {resamples.Count} resamplings drop or fork depends on their potentials.")
        {
            PreviewNfe = NfeRange.Exactly(previews),
        };
    }

    /// <inheritdoc />
    public async Task<StrategyOutcome> RunAsync(ISearchTree tree, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(tree);
        var particles = Enumerable.Range(0, Particles).Select(_ => new Particle(tree.CreateRoot(), [])).ToList();
        foreach (var step in StrategyArguments.Every(ResampleEvery, tree.Steps))
        {
            await tree.AdvanceAsync([.. particles.Select(p => p.Node)], step, cancellationToken).ConfigureAwait(false);
            particles = [.. particles.Where(p => p.Node.StepIndex == step)];
            var scored = await tree.VerifyAsync([.. particles.Select(p => p.Node)], PreviewSteps, cancellationToken).ConfigureAwait(false);
            if (particles.Count == 0 || scored.Count < particles.Count)
            {
                break; // out of budget: no more resampling; finish the particles there are
            }

            foreach (var p in particles)
            {
                p.Rewards.Add(p.Node.Score!.Value);
            }

            var weights = Weights(particles);
            if (Adaptive && 1.0 / weights.Sum(w => w * w) >= Particles / 2.0)
            {
                continue;
            }

            particles = Resample(tree, particles, weights, step);
        }

        var nodes = particles.Select(p => p.Node).ToList();
        await tree.AdvanceAsync(nodes, tree.Steps, cancellationToken).ConfigureAwait(false);
        var finished = nodes.Where(n => n.IsComplete).ToList();
        await tree.VerifyAsync(finished, cancellationToken).ConfigureAwait(false);
        return new StrategyOutcome(nodes);
    }

    private double[] Weights(List<Particle> particles)
    {
        var log = particles.Select(p => Lambda * Potential switch
        {
            FkPotential.Max => p.Rewards.Max(),
            FkPotential.Sum => p.Rewards.Sum(),
            FkPotential.Difference => p.Rewards[^1] - (p.Rewards.Count > 1 ? p.Rewards[^2] : 0),
            _ => p.Rewards[^1],
        }).ToArray();
        var max = log.Max();
        var weights = log.Select(l => Math.Exp(l - max)).ToArray();
        var total = weights.Sum();
        return [.. weights.Select(w => w / total)];
    }

    /// <summary>
    /// How many copies of each particle carry on, for weights summing to 1: multinomial, one uniform per copy; systematic,
    /// the first uniform u placed at the points (i + u)/k. Each point picks the particle whose cumulative weight passes it.
    /// </summary>
    internal static int[] Copies(IReadOnlyList<double> weights, ReadOnlySpan<double> uniforms, FkResampling resampling)
    {
        var copies = new int[weights.Count];
        var k = uniforms.Length;
        for (var draw = 0; draw < k; draw++)
        {
            var u = resampling == FkResampling.Systematic ? (draw + uniforms[0]) / k : uniforms[draw];
            var cumulative = 0.0;
            var chosen = weights.Count - 1;
            for (var i = 0; i < weights.Count; i++)
            {
                cumulative += weights[i];
                if (u < cumulative)
                {
                    chosen = i;
                    break;
                }
            }

            copies[chosen]++;
        }

        return copies;
    }

    /// <summary>Resamples to k particles; a particle drawn once carries on, one drawn c &gt; 1 times is forked c ways.</summary>
    private List<Particle> Resample(ISearchTree tree, List<Particle> particles, double[] weights, int step)
    {
        var uniforms = new double[Particles];
        tree.FillUniform(step, uniforms);
        var counts = Copies(weights, uniforms, Resampling);
        var next = new List<Particle>(Particles);
        for (var i = 0; i < particles.Count; i++)
        {
            if (counts[i] == 0)
            {
                tree.Prune(particles[i].Node);
                continue;
            }

            if (counts[i] == 1)
            {
                next.Add(particles[i]);
            }
            else
            {
                next.AddRange(tree.Fork(particles[i].Node, counts[i], RenoiseSteps).Select(child => new Particle(child, [.. particles[i].Rewards])));
            }
        }

        return next;
    }

    private sealed record Particle(ISearchNode Node, List<double> Rewards);
}
