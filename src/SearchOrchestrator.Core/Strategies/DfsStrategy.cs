using SearchOrchestrator.Search;

namespace SearchOrchestrator.Strategies;

/// <summary>What <see cref="DfsStrategy"/> scores at an evaluation step.</summary>
public enum DfsJudge
{
    /// <summary>The node's x0-prediction, or its preview when preview steps j &gt; 1.</summary>
    Prediction,

    /// <summary>
    /// The node's state: a masked model's committed tokens, its masked positions blank (for Sudoku, the constraints the
    /// unmasked cells already break). It costs no NFE; only masked models take it (a gaussian state is noise).
    /// </summary>
    State,
}

/// <summary>
/// <c>dfs</c>: one trajectory goes deep; at each evaluation step, while its score is below the threshold and
/// backtracks remain, it renoises back <c>recur_depth</c> steps and tries again; the best state seen at that step is
/// kept and carried on (Zhang et al., 2025, "Inference-time Scaling of Diffusion Models through Classical Search").
/// With <c>escalate</c>, every retry at the same step that does no better doubles how far the next one goes back: when
/// a step's retries keep failing, the cause was committed earlier, as in classical backtracking. A backtrack never
/// spends the NFE the search needs to finish: under a budget the last ones go back only as far as it leaves room for.
/// </summary>
/// <param name="EvaluateAt">The evaluation steps.</param>
/// <param name="Threshold">Scores below this trigger a backtrack.</param>
/// <param name="RecurDepth">How many steps a backtrack renoises back.</param>
/// <param name="MaxBacktracks">The most backtracks in the whole search.</param>
/// <param name="PreviewSteps">j of the evaluations' previews; null: the request's, else 3 (none with judge=state).</param>
/// <param name="Judge">What an evaluation scores: the x0-prediction (or its preview) or, for masked models, the committed state.</param>
/// <param name="Escalate">Each failed retry at a step doubles the next one's depth (recur_depth, 2·recur_depth, 4·…, back to step 0 at most).</param>
public sealed record DfsStrategy(IReadOnlyList<int> EvaluateAt, double Threshold, int RecurDepth, int MaxBacktracks, int? PreviewSteps = null, DfsJudge Judge = DfsJudge.Prediction, bool Escalate = false) : ISearchStrategy<DfsStrategy>
{
    /// <inheritdoc />
    public static StrategyDefinition Definition { get; } = new(
        StrategyNames.Dfs,
        "one trajectory; below the threshold at an evaluation step it renoises back and retries (DFS with backtracking); judge previews (preview_steps > 1), not raw predictions; on masked models judge=state backtracks on committed cells (Sudoku with sudoku-conflicts). Its defaults (3-step previews, 15 backtracks) were tuned on the counting bench (held out, 144 searches: 79.2% at 2.5× one trajectory against 28.5% for one sample and 77.8% for best_of_n at 4×; BENCHMARKS.md 3b).",
        [
            new("evaluate_at", "<steps> (default every N/5)", "the evaluation steps, comma-separated"),
            new("threshold", "0.5", "scores below this trigger a backtrack"),
            new("recur_depth", "N/10", "steps a backtrack renoises back"),
            new("max_backtracks", "15", "the most backtracks in the whole search"),
            StrategyArguments.PreviewStepsParameterWithDefault("the request's, else 3 (judge=state: none)"),
            new("judge", "prediction|state", "what an evaluation scores: the x0-prediction (its preview when preview_steps > 1), or a masked model's committed tokens with the masks blank (Sudoku: backtrack on constraints the unmasked cells break; no NFE)"),
            new("escalate", "false", "true: each retry at a step that does no better doubles how far the next one renoises back"),
        ],
        (p, steps) =>
        {
            var judge = p.Enum("judge", DfsJudge.Prediction);
            return new DfsStrategy(
                p.Steps("evaluate_at", StrategyArguments.Every(StrategyArguments.Fifth(steps), steps)),
                p.Double("threshold", 0.5),
                p.Int("recur_depth", StrategyArguments.Tenth(steps)),
                p.Int("max_backtracks", 15),
                StrategyArguments.PreviewSteps(p),
                judge,
                p.Bool("escalate", false));
        });

    /// <summary>Evaluations of predictions preview this many steps when neither the strategy nor the request sets preview_steps (tuned on the counting bench).</summary>
    public const int DefaultPreviewSteps = 3;

    /// <inheritdoc />
    public string Name => StrategyNames.Dfs;

    /// <inheritdoc />
    public bool NeedsVerifiers => true;

    /// <inheritdoc />
    public bool JudgesStates => Judge == DfsJudge.State;

    /// <inheritdoc />
    public void Validate(int steps)
    {
        StrategyArguments.EvaluationSteps(Name, "evaluate_at", EvaluateAt, steps);
        StrategyArguments.Within(Name, "recur_depth", RecurDepth, 1, steps);
        StrategyArguments.AtLeast(Name, "max_backtracks", MaxBacktracks, 0);
        StrategyArguments.PreviewSteps(Name, PreviewSteps);
        if (Judge == DfsJudge.State && PreviewSteps > 1)
        {
            throw new InvalidRequestException("strategy.preview_steps", $"{Name}: judge=state scores the committed tokens, not a preview; leave preview_steps out or use judge=prediction.");
        }

        if (!double.IsFinite(Threshold))
        {
            throw new InvalidRequestException("strategy.threshold", $"{Name}: threshold must be a finite number, got {Threshold}.");
        }
    }

    /// <summary>
    /// A range: one trajectory of N steps, plus up to <c>max_backtracks</c> retries of at most <c>recur_depth</c> steps
    /// each (with <c>escalate</c>, at most the last evaluation step each); how many it takes depends on the scores
    /// (renoising back is the retry, under any η).
    /// </summary>
    public CostPlan Plan(PlanContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var n = context.Steps;
        long extra = (long)MaxBacktracks * (Escalate ? EvaluateAt.DefaultIfEmpty(0).Max() : RecurDepth);
        // Every evaluation previews the current node once, every backtrack its retry once more; a judged state needs none.
        long Preview(int step) => Judge == DfsJudge.State ? 0 : context.PreviewNfe(PreviewSteps, step, DefaultPreviewSteps);
        var previews = EvaluateAt.Sum(Preview);
        var retryPreviews = MaxBacktracks * EvaluateAt.Select(Preview).DefaultIfEmpty(0).Max();
        // Each abandoned retry ends a trajectory whose path is at most the whole N plus every backtrack's steps.
        return new(new NfeRange(n + previews, n + extra + previews + retryPreviews), new NfeRange(n + previews, ((1 + (long)MaxBacktracks) * (n + extra)) + previews + retryPreviews),
            $"adaptive: {n} steps, plus up to {MaxBacktracks} backtracks of at most {RecurDepth} steps when a score falls below {Threshold}.")
        {
            PreviewNfe = new NfeRange(previews, previews + retryPreviews),
        };
    }

    /// <inheritdoc />
    public async Task<StrategyOutcome> RunAsync(ISearchTree tree, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(tree);
        var current = tree.CreateRoot();
        var backtracks = 0;
        foreach (var step in EvaluateAt)
        {
            await tree.AdvanceAsync(current, step, cancellationToken).ConfigureAwait(false);
            if (current.StepIndex != step || (await JudgeAsync(tree, current, cancellationToken).ConfigureAwait(false)).Count == 0)
            {
                break; // out of budget: carry on with what we have
            }

            var best = current;
            var depth = RecurDepth;
            while (best.Score < Threshold && backtracks < MaxBacktracks)
            {
                // The retry re-advances `back` steps; what is left must still carry the best path from here to the end.
                var back = (int)Math.Min(Math.Min(depth, step), tree.NfeRemaining - (tree.Steps - step));
                if (back < 1)
                {
                    break;
                }

                backtracks++;
                var retry = tree.Renoise(best, step - back);
                await tree.AdvanceAsync(retry, step, cancellationToken).ConfigureAwait(false);
                if (retry.StepIndex != step || (await JudgeAsync(tree, retry, cancellationToken).ConfigureAwait(false)).Count == 0)
                {
                    tree.Prune(retry);
                    break;
                }

                if (retry.Score > best.Score)
                {
                    best = retry;
                }
                else
                {
                    tree.Prune(retry);
                    depth = Escalate ? (int)Math.Min(2L * depth, step) : depth;
                }
            }

            current = best;
        }

        await tree.AdvanceAsync(current, tree.Steps, cancellationToken).ConfigureAwait(false);
        if (current.IsComplete)
        {
            await tree.VerifyAsync([current], PreviewSteps, cancellationToken).ConfigureAwait(false);
        }

        return new StrategyOutcome([current]);
    }

    private Task<IReadOnlyList<ISearchNode>> JudgeAsync(ISearchTree tree, ISearchNode node, CancellationToken cancellationToken) =>
        Judge == DfsJudge.State ? tree.VerifyStatesAsync([node], cancellationToken) : tree.VerifyAsync([node], PreviewSteps ?? tree.PreviewSteps ?? DefaultPreviewSteps, cancellationToken);
}
