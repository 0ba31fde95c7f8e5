using System.Diagnostics;
using System.Globalization;
using SearchOrchestrator.Onnx.Repository;
using SearchOrchestrator.Search;
using SearchOrchestrator.Verifiers;

namespace SearchOrchestrator.Bench;

/// <summary>What every bench of one run shares: the models (timed), the report folder and the progress bars.</summary>
internal sealed class BenchContext(ModelRepository repository, TimedModels models, BenchReport report, BenchProgress progress, bool quick)
{
    private readonly ObjectCounter _counter = new();
    private readonly CompositionJudge _judge = new();

    /// <summary>The repository, for untimed access (the raw forward-pass loop).</summary>
    public ModelRepository Repository { get; } = repository;

    /// <summary>The catalog the engines run on; every forward pass through it is timed.</summary>
    public TimedModels Models { get; } = models;

    public BenchReport Report { get; } = report;

    public BenchProgress Progress { get; } = progress;

    /// <summary>A smoke run: fewer seeds and shorter windows.</summary>
    public bool Quick { get; } = quick;

    /// <summary>
    /// The prompts a text-to-image family is benched on, fixed before any measurement: six whose (count, colour, shape)
    /// triples were all in training and six that name a triple held out of training (models/README.md lists them).
    /// </summary>
    public static IReadOnlyList<string> CompositionPrompts { get; } =
    [
        "three red circles", "one yellow circle", "five blue squares", "four blue triangles",
        "two green squares and one blue triangle", "two red triangles and one green circle",
        "two blue circles", "seven red circles", "four yellow triangles", "nine green circles",
        "two red squares and one yellow circle", "three green circles and two blue squares",
    ];

    /// <summary>What a model is benched on: a pipeline's <see cref="CompositionPrompts"/>, or every label of a class-conditioned model.</summary>
    public IReadOnlyList<string> Conditions(string model) =>
        Models.GetStages(model) is null ? Models.GetDenoiser(model).Description.Conditions.Labels : CompositionPrompts;

    /// <summary><paramref name="request"/> for one of <see cref="Conditions"/>: a pipeline's prompt, or a class label.</summary>
    public static SearchRequest For(SearchRequest request, string condition, bool pipeline) => pipeline
        ? request with { Condition = string.Empty, TextPrompt = condition }
        : request with { Condition = condition };

    /// <summary>
    /// True when the best candidate is right: for a prompt, the compositional judge finds exactly its groups; for a
    /// class label, the programmatic counter finds exactly the requested count.
    /// </summary>
    public bool IsCorrect(SearchResult result, SearchRequest request) =>
        result.Candidates.Count > 0 && (request.TextPrompt is { } prompt
            ? _judge.Judge(result.Candidates[0].Sample, result.Candidates[0].Shape, prompt).Match
            : _counter.Count(result.Candidates[0].Sample, result.Candidates[0].Shape).ToString(CultureInfo.InvariantCulture) == request.Condition);

    /// <summary>Runs one search alone and splits its wall time into the measured components.</summary>
    public async Task<SearchSample> MeasureAsync(SearchEngine engine, SearchRequest request, CancellationToken cancellationToken)
    {
        var denoising = Models.Denoising.Read();
        var verifying = Models.Verifying.Read();
        var started = Stopwatch.GetTimestamp();
        var result = await engine.RunAsync(request, cancellationToken).ConfigureAwait(false);
        var wall = Stopwatch.GetElapsedTime(started);
        var forward = Models.Denoising.Read() - denoising;
        var verifier = Models.Verifying.Read() - verifying;
        var cost = result.Cost;
        return new SearchSample
        {
            Strategy = request.Strategy.Name,
            Condition = request.Condition,
            Seed = request.Seed,
            Nfe = cost.Nfe,
            NfeIndependent = cost.NfeIndependent,
            EncoderCalls = cost.EncoderCalls,
            DecoderCalls = cost.DecoderCalls,
            Correct = IsCorrect(result, request),
            WallMs = wall.TotalMilliseconds,
            ForwardMs = forward.Time.TotalMilliseconds,
            ForwardPasses = forward.Passes,
            ForwardRows = forward.Rows,
            BatchComputeMs = cost.ComputeTime.TotalMilliseconds,
            QueueMs = cost.QueueTime.TotalMilliseconds,
            VerifierMs = verifier.Time.TotalMilliseconds,
            VerifierPasses = verifier.Passes,
        };
    }
}

/// <summary>One search measured alone: its cost account, its accuracy and where its wall time went.</summary>
internal sealed record SearchSample
{
    public required string Strategy { get; init; }

    public required string Condition { get; init; }

    public required ulong Seed { get; init; }

    public required long Nfe { get; init; }

    public required long NfeIndependent { get; init; }

    /// <summary>Prompts the search had the text encoder encode (a pipeline's).</summary>
    public long EncoderCalls { get; init; }

    /// <summary>Latents the search had the decoder decode (a pipeline's).</summary>
    public long DecoderCalls { get; init; }

    /// <summary>The programmatic counter agrees with the condition.</summary>
    public required bool Correct { get; init; }

    /// <summary>From submitting the search to its result.</summary>
    public required double WallMs { get; init; }

    /// <summary>Time inside the denoiser's forward passes (ONNX Runtime).</summary>
    public required double ForwardMs { get; init; }

    public required long ForwardPasses { get; init; }

    public required long ForwardRows { get; init; }

    /// <summary>The batches' whole time: forward passes plus stacking and the per-node sampler updates.</summary>
    public required double BatchComputeMs { get; init; }

    /// <summary>Time its steps and verifications waited in queues, summed over items.</summary>
    public required double QueueMs { get; init; }

    /// <summary>Time inside verifier passes.</summary>
    public required double VerifierMs { get; init; }

    public required long VerifierPasses { get; init; }

    /// <summary>Stacking inputs and applying each node's sampler update: batch time outside the forward pass.</summary>
    public double SamplerUpdateMs => Math.Max(0, BatchComputeMs - ForwardMs);

    /// <summary>Wall time outside any batch and verifier pass: waiting for a batch to form, hand-offs, tree bookkeeping.</summary>
    public double OtherMs => Math.Max(0, WallMs - BatchComputeMs - VerifierMs);
}
