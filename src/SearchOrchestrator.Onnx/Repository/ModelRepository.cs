using System.Diagnostics;
using System.Security.Cryptography;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.ML.OnnxRuntime;
using SearchOrchestrator.Denoising;
using SearchOrchestrator.Onnx.Manifests;
using SearchOrchestrator.Onnx.Pipelines;
using SearchOrchestrator.Onnx.Runtime;
using SearchOrchestrator.Onnx.Text;
using SearchOrchestrator.Processes;
using SearchOrchestrator.Search;
using SearchOrchestrator.Tensors;
using SearchOrchestrator.Verifiers;

namespace SearchOrchestrator.Onnx.Repository;

/// <summary>One model folder and what became of it: ready to serve, or failed with the reason.</summary>
public sealed record ModelEntry
{
    /// <summary>The folder name, which is the model's name.</summary>
    public required string Name { get; init; }

    /// <summary>The manifest, when it could be read.</summary>
    public ModelManifest? Manifest { get; init; }

    /// <summary>Why the model is not served, naming the manifest field; null when it is ready.</summary>
    public string? Error { get; init; }

    /// <summary>
    /// For a folder in the diffusers ONNX layout: its stages with their tensors and dtypes (empty when the layout was
    /// refused before its sessions opened); null for a manifest model.
    /// </summary>
    public IReadOnlyList<PipelineStage>? Stages { get; init; }

    /// <summary>True when the model is loaded, validated and warmed up.</summary>
    public bool IsReady => Error is null;

    /// <summary>The manifest's kind, <c>pipeline</c> for a diffusers layout, or <c>unknown</c>.</summary>
    public string Kind => Manifest?.Kind ?? (Stages is null ? "unknown" : ManifestNames.Pipeline);
}

/// <summary>
/// The model repository: every <c>&lt;path&gt;/&lt;name&gt;/model.json</c> beside its <c>model.onnx</c>, every
/// <c>&lt;path&gt;/&lt;name&gt;/</c> in the diffusers ONNX layout (<c>model_index.json</c>, <see cref="DiffusersLayout"/>),
/// loaded as a <see cref="DiffusersPipeline"/> (its subfolders with a <c>model.json</c>, such as its verifier, served as
/// <c>&lt;name&gt;-&lt;subfolder&gt;</c>), and every diffusion LLM folder as Hugging Face exports ship it
/// (<c>config.json</c>, <c>tokenizer.json</c>, <c>model.onnx</c>: <see cref="TextModelLayout"/>), served as a masked denoiser. Each model is checked (manifest fields, SHA-256, the ONNX graph's own
/// inputs and outputs; for a pipeline its configs, tokenizer and stage tensors), given its sessions and warmed up.
/// A broken model is reported with its reason and the others are still served. Models are looked up by name
/// only; nothing a request says becomes a path.
/// </summary>
public sealed class ModelRepository : IModelProvider, IDisposable
{
    private readonly Dictionary<string, IDenoiser> _denoisers = new(StringComparer.Ordinal);
    private readonly Dictionary<string, IVerifier> _verifiers = new(StringComparer.Ordinal);
    private readonly Dictionary<string, DiffusersPipeline> _pipelines = new(StringComparer.Ordinal);
    private readonly List<ModelEntry> _entries = [];

    private ModelRepository(string rootPath, string executionProvider)
    {
        RootPath = rootPath;
        ExecutionProvider = executionProvider;
    }

    /// <summary>The repository folder, absolute.</summary>
    public string RootPath { get; }

    /// <summary>The execution provider every session runs on: <c>cpu</c>, <c>cuda</c> or <c>tensorrt</c>.</summary>
    public string ExecutionProvider { get; }

    /// <summary>Every model folder, ready or failed, by name.</summary>
    public IReadOnlyList<ModelEntry> Models => _entries;

    /// <summary>Loads every model under <see cref="ModelRepositoryOptions.Path"/>.</summary>
    /// <exception cref="DirectoryNotFoundException">The repository folder does not exist.</exception>
    public static ModelRepository Load(ModelRepositoryOptions options, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        logger ??= NullLogger.Instance;
        var root = System.IO.Path.GetFullPath(options.Path);
        if (!Directory.Exists(root))
        {
            throw new DirectoryNotFoundException($"The model repository '{root}' does not exist; set {ModelRepositoryOptions.SectionName}:Path (or --models) to the folder holding <name>/model.json and <name>/model.onnx.");
        }

        var sessions = new OnnxSessionFactory(options, logger);
        var repository = new ModelRepository(root, sessions.Provider);
        foreach (var folder in Directory.EnumerateDirectories(root).Order(StringComparer.Ordinal))
        {
            var name = System.IO.Path.GetFileName(folder);
            var hasManifest = File.Exists(System.IO.Path.Combine(folder, ManifestNames.ManifestFileName));
            var isPipeline = !hasManifest && DiffusersPipelineLoader.LooksLikePipeline(folder);
            var isText = !hasManifest && !isPipeline && TextModelLayout.LooksLikeTextModel(folder);
            if (!hasManifest && !isPipeline && !isText && !File.Exists(System.IO.Path.Combine(folder, ManifestNames.ModelFileName)))
            {
                continue; // not a model folder (training scripts, docs)
            }

            repository.Add(name, folder, isPipeline ? repository.LoadPipeline : isText ? repository.LoadText : repository.LoadOne, sessions, options.WarmUp, logger);
            if (isPipeline)
            {
                // A family's own manifest models (its verifier) sit in subfolders: served as <pipeline>-<subfolder>.
                foreach (var member in Directory.EnumerateDirectories(folder).Where(f => File.Exists(System.IO.Path.Combine(f, ManifestNames.ManifestFileName))).Order(StringComparer.Ordinal))
                {
                    repository.Add($"{name}-{System.IO.Path.GetFileName(member)}", member, repository.LoadOne, sessions, options.WarmUp, logger);
                }
            }
        }

        OnnxLog.RepositoryLoaded(logger, root, repository._entries.Count(e => e.IsReady), repository._entries.Count(e => !e.IsReady));
        return repository;
    }

    /// <summary>The denoiser called <paramref name="name"/>.</summary>
    /// <exception cref="ModelNotFoundException">No such model, or it failed to load (the message says why).</exception>
    /// <exception cref="InvalidRequestException">The model is a verifier.</exception>
    public IDenoiser GetDenoiser(string name) => Get(_denoisers, name, ManifestNames.Denoiser, "model");

    /// <summary>The ONNX verifier called <paramref name="name"/>.</summary>
    /// <exception cref="ModelNotFoundException">No such model, or it failed to load (the message says why).</exception>
    /// <exception cref="InvalidRequestException">The model is a denoiser.</exception>
    public IVerifier GetVerifier(string name) => Get(_verifiers, name, ManifestNames.Verifier, "verifiers");

    /// <summary>The diffusers-layout pipeline called <paramref name="name"/>, with its stages.</summary>
    /// <exception cref="ModelNotFoundException">No such model, or it failed to load (the message says why).</exception>
    /// <exception cref="InvalidRequestException">The model is a manifest model, not a pipeline.</exception>
    public DiffusersPipeline GetPipeline(string name) => Get(_pipelines, name, ManifestNames.Pipeline, "model");

    /// <summary>The stages of the pipeline called <paramref name="name"/>, or null when no loaded pipeline has that name.</summary>
    public PipelineStages? GetStages(string name) =>
        name is not null && _pipelines.TryGetValue(name, out var pipeline) ? new PipelineStages(pipeline.TextEncoder, pipeline.DenoiserInstances, pipeline.Decoder) : null;

    /// <summary>Disposes every session.</summary>
    public void Dispose()
    {
        foreach (var model in _denoisers.Values.Concat<object>(_verifiers.Values).Concat(_pipelines.Values))
        {
            (model as IDisposable)?.Dispose();
        }

        _denoisers.Clear();
        _verifiers.Clear();
        _pipelines.Clear();
    }

    private void Add(string name, string folder, Func<string, string, OnnxSessionFactory, bool, ModelEntry> load, OnnxSessionFactory sessions, bool warmUp, ILogger logger)
    {
        var started = Stopwatch.StartNew();
        var entry = load(name, folder, sessions, warmUp);
        _entries.Add(entry);
        if (entry.IsReady)
        {
            OnnxLog.ModelLoaded(logger, entry.Kind, name, started.ElapsedMilliseconds);
        }
        else
        {
            OnnxLog.ModelFailed(logger, name, entry.Error!);
        }
    }

    private T Get<T>(Dictionary<string, T> models, string name, string kind, string argument)
    {
        if (name is not null && models.TryGetValue(name, out var model))
        {
            return model;
        }

        var entry = _entries.Find(e => e.Name == name);
        if (entry is null)
        {
            var ready = string.Join(", ", _entries.Where(e => e.IsReady && e.Kind == kind).Select(e => e.Name));
            throw new ModelNotFoundException(name ?? string.Empty, $"no {kind} named {CallerInput.Quote(name)} in the model repository; available: {(ready.Length > 0 ? ready : "none")}.");
        }

        if (!entry.IsReady)
        {
            throw new ModelNotFoundException(name!, $"model {CallerInput.Quote(name)} is in the repository but failed to load: {entry.Error}");
        }

        throw new InvalidRequestException(argument, $"model {CallerInput.Quote(name)} is a {entry.Kind}, not a {kind}.");
    }

    private ModelEntry LoadOne(string name, string folder, OnnxSessionFactory sessions, bool warmUp)
    {
        ModelManifest? manifest = null;
        InferenceSession? session = null;
        try
        {
            manifest = ReadManifest(folder);
            var errors = ManifestValidator.Validate(manifest, System.IO.Path.GetFileName(folder)).ToList();
            var modelPath = System.IO.Path.Combine(folder, ManifestNames.ModelFileName);
            if (!File.Exists(modelPath))
            {
                errors.Add($"{ManifestNames.ModelFileName}: missing beside {ManifestNames.ManifestFileName}");
            }
            else if (manifest.Sha256 is not null)
            {
                var actual = HashFile(modelPath);
                if (actual != manifest.Sha256)
                {
                    errors.Add($"sha256: the manifest says {manifest.Sha256} but {ManifestNames.ModelFileName} hashes to {actual} (the file changed; retrain with `make models` or restore it)");
                }
            }

            if (errors.Count > 0)
            {
                return Failed(name, manifest, errors);
            }

            session = sessions.Create(modelPath);
            errors.AddRange(ManifestValidator.ValidateAgainstModel(manifest, session));
            if (errors.Count > 0)
            {
                session.Dispose();
                return Failed(name, manifest, errors);
            }

            if (manifest.Kind == ManifestNames.Denoiser)
            {
                var first = CreateDenoiser(name, manifest, session);
                session = null;
                IDenoiser denoiser = first;
                if (sessions.Instances > 1 || sessions.LonePassThreads > 0)
                {
                    var instances = new List<IDenoiser> { first };
                    var multi = new OnnxDenoiserInstances(instances);
                    denoiser = multi;
                    _denoisers[name] = denoiser; // disposed with its sessions if a later one fails
                    while (instances.Count < sessions.Instances)
                    {
                        instances.Add(CreateDenoiser(name, manifest, sessions.Create(modelPath)));
                    }

                    if (sessions.LonePassThreads > 0)
                    {
                        multi.LoneSession = CreateDenoiser(name, manifest, sessions.Create(modelPath, lonePass: true));
                    }
                }

                _denoisers[name] = denoiser;
                if (warmUp)
                {
                    WarmUp(denoiser);
                }
            }
            else
            {
                var verifier = CreateVerifier(name, folder, manifest, session);
                session = null;
                _verifiers[name] = verifier;
                if (warmUp)
                {
                    WarmUp(verifier, manifest);
                }
            }

            return new ModelEntry { Name = name, Manifest = manifest };
        }
        catch (Exception ex) when (ex is JsonException or OnnxRuntimeException or IOException or InvalidOperationException or ArgumentException or UnauthorizedAccessException or PipelineLayoutException)
        {
            session?.Dispose();
            if (_denoisers.Remove(name, out var denoiser))
            {
                (denoiser as IDisposable)?.Dispose();
            }

            if (_verifiers.Remove(name, out var verifier))
            {
                (verifier as IDisposable)?.Dispose();
            }

            return Failed(name, manifest, [ex is JsonException ? $"{ManifestNames.ManifestFileName}: {ex.Message}" : ex.Message]);
        }
    }

    private ModelEntry LoadPipeline(string name, string folder, OnnxSessionFactory sessions, bool warmUp)
    {
        try
        {
            var (pipeline, stages, errors) = DiffusersPipelineLoader.Load(name, folder, sessions, warmUp);
            if (pipeline is null)
            {
                return Failed(name, null, errors) with { Stages = stages };
            }

            _pipelines[name] = pipeline;
            return new ModelEntry { Name = name, Stages = pipeline.Stages };
        }
        catch (Exception ex) when (ex is PipelineLayoutException or OnnxRuntimeException or IOException or InvalidOperationException or ArgumentException or UnauthorizedAccessException)
        {
            return Failed(name, null, [ex.Message]) with { Stages = [] };
        }
    }

    private ModelEntry LoadText(string name, string folder, OnnxSessionFactory sessions, bool warmUp)
    {
        var modelPath = System.IO.Path.Combine(folder, ManifestNames.ModelFileName);
        try
        {
            var (model, errors) = TextModelLayout.Read(name, folder, () => sessions.Create(modelPath));
            if (model is null)
            {
                return Failed(name, null, errors);
            }

            var instances = new List<IDenoiser> { new OnnxTextDenoiser(model.Session, model.Description, model.Tensors) };
            IDenoiser denoiser = sessions.Instances > 1 ? new OnnxDenoiserInstances(instances) : instances[0];
            _denoisers[name] = denoiser; // disposed with its sessions if a later one fails
            while (instances.Count < sessions.Instances)
            {
                instances.Add(new OnnxTextDenoiser(sessions.Create(modelPath), model.Description, model.Tensors));
            }

            if (warmUp)
            {
                WarmUp(denoiser);
            }

            return new ModelEntry { Name = name, Manifest = model.Manifest };
        }
        catch (Exception ex) when (ex is OnnxRuntimeException or IOException or InvalidOperationException or ArgumentException or UnauthorizedAccessException)
        {
            if (_denoisers.Remove(name, out var denoiser))
            {
                (denoiser as IDisposable)?.Dispose();
            }

            return Failed(name, null, [ex.Message]);
        }
    }

    private static ModelEntry Failed(string name, ModelManifest? manifest, IEnumerable<string> errors) =>
        new() { Name = name, Manifest = manifest, Error = $"model '{name}': {string.Join("; ", errors)}" };

    private static ModelManifest ReadManifest(string folder)
    {
        var path = System.IO.Path.Combine(folder, ManifestNames.ManifestFileName);
        if (!File.Exists(path))
        {
            throw new IOException($"{ManifestNames.ManifestFileName}: missing beside {ManifestNames.ModelFileName}");
        }

        using var stream = File.OpenRead(path);
        return JsonSerializer.Deserialize<ModelManifest>(stream, ModelManifest.SerializerOptions)
            ?? throw new JsonException("the manifest is empty (null)");
    }

    private static string HashFile(string path)
    {
        using var stream = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }

    /// <summary>
    /// What Core needs to drive the denoiser a validated manifest describes (sample shape, process, conditions);
    /// backends that run the model elsewhere (the Open Inference Protocol client) describe it from the manifest too.
    /// </summary>
    /// <exception cref="ArgumentException">The manifest is not a valid denoiser manifest; the message names the fields.</exception>
    public static DenoiserDescription DescribeDenoiser(string name, ModelManifest m)
    {
        ArgumentNullException.ThrowIfNull(m);
        var errors = ManifestValidator.Validate(m, name).ToList();
        if (m.Kind != ManifestNames.Denoiser)
        {
            errors.Add($"kind: '{m.Kind}' is not a {ManifestNames.Denoiser}");
        }

        if (errors.Count > 0)
        {
            throw new ArgumentException($"model '{name}': {string.Join("; ", errors)}", nameof(m));
        }

        return Describe(name, m);
    }

    private static DenoiserDescription Describe(string name, ModelManifest m)
    {
        if (m.Process == ManifestNames.Masked)
        {
            var length = m.Inputs!["sample"].Shape![1];
            var masked = new DenoiserDescription
            {
                Name = name,
                SampleShape = new SampleShape(length),
                Process = new MaskedProcess(length, m.Tokens!.Vocabulary!.Length, m.Tokens.MaskId!.Value, m.Tokens.Vocabulary),
                Conditions = ConditionVocabulary.FreeText,
            };
            return masked;
        }

        var schedule = m.Schedule!;
        var noise = schedule.Beta == "cosine"
            ? NoiseSchedule.Cosine(schedule.TrainingSteps!.Value)
            : NoiseSchedule.Linear(schedule.TrainingSteps!.Value, schedule.BetaStart!.Value, schedule.BetaEnd!.Value);
        var range = m.SampleRange is [var min, var max] ? (min, max) : ((float, float)?)null;
        var vocabulary = new ConditionVocabulary(m.Condition!.Vocabulary!, m.Condition.NullId);
        return new DenoiserDescription
        {
            Name = name,
            SampleShape = new SampleShape(m.Inputs!["sample"].Shape![1..]),
            Process = new GaussianProcess(noise, ManifestNames.Predictions[m.Prediction!], range),
            Conditions = vocabulary,
        };
    }

    private static OnnxDenoiser CreateDenoiser(string name, ModelManifest m, InferenceSession session)
    {
        var masked = m.Process == ManifestNames.Masked;
        return new(session, Describe(name, m), m.Inputs!["sample"].Name!, m.Inputs["time"].Name!, masked ? null : m.Inputs["condition"].Name!, m.Outputs!["prediction"].Name!, tokenInput: masked);
    }

    private static IVerifier CreateVerifier(string name, string folder, ModelManifest m, InferenceSession session)
    {
        var shape = new SampleShape(m.Inputs!["sample"].Shape![1..]);
        var (output, width) = (m.Outputs!["output"].Name!, m.Outputs["output"].Shape![1]);
        if (!m.Inputs.TryGetValue("prompt", out var prompt))
        {
            return new OnnxVerifier(name, session, shape, m.Inputs["sample"].Name!, output, width, m.Scoring!, m.Inputs.GetValueOrDefault("time")?.Name);
        }

        // The manifest names its tokenizer relative to itself; errors name the manifest field and the file.
        var length = prompt.Shape![1];
        var tokenizer = ClipTokenizer.Load(System.IO.Path.GetFullPath(System.IO.Path.Combine(folder, m.Tokenizer!)), length, $"tokenizer ('{m.Tokenizer}')");
        if (tokenizer.MaxLength != length)
        {
            throw new InvalidOperationException($"tokenizer: '{m.Tokenizer}' pads to {tokenizer.MaxLength} tokens (model_max_length) but inputs.prompt.shape takes {length}");
        }

        return new OnnxPromptVerifier(name, session, tokenizer, shape, m.Inputs["sample"].Name!, prompt.Name!, output, width, m.Scoring!);
    }

    private static void WarmUp(IDenoiser denoiser)
    {
        var d = denoiser.Description;
        var condition = d.Conditions.Resolve(d.Conditions.IsFreeText ? string.Empty : d.Conditions.Labels[0], d.Name);
        var output = new float[d.OutputElements];
        // Every session the pumps may run: each instance and the lone-pass session.
        IEnumerable<IDenoiser> sessions = denoiser is IMultiInstanceDenoiser multi ? [.. multi.Instances, .. multi.LonePass is { } lone ? [lone] : Array.Empty<IDenoiser>()] : [denoiser];
        foreach (var session in sessions)
        {
            session.PredictAsync(new DenoiserBatch(1, new float[d.SampleShape.ElementCount], new float[1], new[] { condition }), output).GetAwaiter().GetResult();
        }
    }

    private static void WarmUp(IVerifier verifier, ModelManifest m)
    {
        var shape = new SampleShape(m.Inputs!["sample"].Shape![1..]);
        var condition = m.Scoring!.Labels?[0] ?? m.Scoring.Targets?.Keys.First() ?? string.Empty;
        verifier.ScoreAsync(new VerifierBatch(shape, new float[shape.ElementCount], [condition]) { Times = new float[1] }).GetAwaiter().GetResult();
    }
}
