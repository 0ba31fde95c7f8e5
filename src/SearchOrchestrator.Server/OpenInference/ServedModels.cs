using SearchOrchestrator.Denoising;
using SearchOrchestrator.Onnx.Pipelines;
using SearchOrchestrator.Onnx.Manifests;
using SearchOrchestrator.Onnx.Repository;
using SearchOrchestrator.Onnx.Runtime;
using SearchOrchestrator.Protos.Inference;
using SearchOrchestrator.Search;

namespace SearchOrchestrator.Server.OpenInference;

/// <summary>One tensor as the protocol describes it: name, data type and shape (-1 on the batch axis).</summary>
internal sealed record ServedTensor(string Name, string Datatype, long[] Shape)
{
    /// <summary>Elements per batch item: the product of every axis but the first.</summary>
    public int ItemElements { get; } = checked((int)Shape.Skip(1).Aggregate(1L, (a, b) => a * b));
}

/// <summary>One decoded input: its spec and its values (floats for FP32, longs for INT64).</summary>
internal sealed record InputValues(ServedTensor Spec, float[]? Floats, long[]? Longs);

/// <summary>
/// A repository model served over the Open Inference Protocol: its tensors as the manifest declares them (inputs in
/// role order) and how to run one batch. Denoisers take sample, time and condition and give their prediction;
/// ONNX verifiers take the sample and give their raw output rows (logits …), before any scoring rule.
/// </summary>
internal sealed class ServedModel
{
    private readonly Func<int, InputValues[], CancellationToken, Task<float[]>> _run;

    private ServedModel(string name, string kind, ServedTensor[] inputs, ServedTensor output, Func<int, InputValues[], CancellationToken, Task<float[]>> run)
    {
        Name = name;
        Kind = kind;
        Inputs = inputs;
        Output = output;
        _run = run;
    }

    /// <summary>The version every model is served as: the repository holds one version of each.</summary>
    public const string Version = "1";

    /// <summary>The platform the protocol reports, as Triton names ONNX Runtime models.</summary>
    public const string Platform = "onnxruntime_onnx";

    public string Name { get; }

    public string Kind { get; }

    public IReadOnlyList<ServedTensor> Inputs { get; }

    public ServedTensor Output { get; }

    /// <summary>Condition ids the denoiser accepts (its vocabulary and null id); null for verifiers.</summary>
    public IReadOnlySet<long>? ConditionIds { get; private init; }

    /// <summary>The model's cumulative ModelInfer statistics.</summary>
    public ServedModelStatistics Statistics { get; } = new();

    /// <summary>
    /// The model's configuration as Triton's <c>ModelConfig</c> describes it: batching up to
    /// <see cref="InferRequestReader.MaxBatch"/> rows per request, each tensor's dims without the batch axis (a per-item
    /// scalar, shape [-1], is dims [1] with an empty reshape, as Triton requires), and no scheduler: every request runs
    /// as it arrives.
    /// </summary>
    public ModelConfig Config()
    {
        var config = new ModelConfig { Name = Name, Platform = Platform, Backend = "onnxruntime", MaxBatchSize = InferRequestReader.MaxBatch };
        foreach (var input in Inputs)
        {
            var (dims, reshape) = Dims(input);
            config.Input.Add(new ModelInput { Name = input.Name, DataType = OpenInferenceDatatypes.ToConfig(input.Datatype), Dims = { dims }, Reshape = reshape });
        }

        var (outputDims, outputReshape) = Dims(Output);
        config.Output.Add(new ModelOutput { Name = Output.Name, DataType = OpenInferenceDatatypes.ToConfig(Output.Datatype), Dims = { outputDims }, Reshape = outputReshape });
        return config;
    }

    public Task<float[]> RunAsync(int batch, InputValues[] inputs, CancellationToken cancellationToken) => _run(batch, inputs, cancellationToken);

    /// <summary>
    /// Every ready repository model the provider serves as a denoiser or an ONNX verifier, and each ready text-to-image
    /// pipeline's VAE decoder as <c>&lt;pipeline&gt;/vae_decoder</c> (<see cref="KServeStages.ModelName"/>); a noise-aware
    /// verifier (it takes each sample's time, which this protocol's requests do not carry) is not served.
    /// </summary>
    public static IReadOnlyDictionary<string, ServedModel> From(ModelRepository repository, IModelProvider models)
    {
        var served = new Dictionary<string, ServedModel>(StringComparer.Ordinal);
        foreach (var entry in repository.Models.Where(e => e.IsReady && e.Kind == ManifestNames.Pipeline))
        {
            var name = KServeStages.ModelName(entry.Name, KServeStages.VaeDecoder);
            served[name] = ForVaeDecoder(name, repository.GetPipeline(entry.Name));
        }

        foreach (var entry in repository.Models.Where(e => e.IsReady && e.Manifest is not null))
        {
            var m = entry.Manifest!;
            if (entry.Kind == ManifestNames.Denoiser)
            {
                var denoiser = models.GetDenoiser(entry.Name);
                served[entry.Name] = ForDenoiser(entry.Name, m, denoiser);
            }
            else if (entry.Kind == ManifestNames.Verifier && m.Inputs?.ContainsKey("time") != true && models.GetVerifier(entry.Name) is IVerifierModel verifier)
            {
                served[entry.Name] = ForVerifier(entry.Name, m, verifier);
            }
        }

        return served;
    }

    private static (long[] Dims, ModelTensorReshape? Reshape) Dims(ServedTensor tensor) =>
        tensor.Shape.Length == 1 ? ([1], new ModelTensorReshape()) : ([.. tensor.Shape.Skip(1)], null);

    private static ServedTensor Tensor(TensorSpec spec) =>
        new(spec.Name!, OpenInferenceDatatypes.FromManifest(spec.Dtype!), [.. spec.Shape!.Select(d => (long)d)]);

    private static ServedModel ForDenoiser(string name, ModelManifest m, IDenoiser denoiser)
    {
        // A masked model's condition is its prompt, already in the tokens it is given: it has no condition input. A text
        // model (a diffusion LLM's export) has no time input either.
        var conditioned = m.Inputs!.ContainsKey("condition");
        var timed = m.Inputs.ContainsKey("time");
        ServedTensor[] inputs = conditioned
            ? [Tensor(m.Inputs["sample"]), Tensor(m.Inputs["time"]), Tensor(m.Inputs["condition"])]
            : timed ? [Tensor(m.Inputs["sample"]), Tensor(m.Inputs["time"])] : [Tensor(m.Inputs["sample"])];
        var output = Tensor(m.Outputs!["prediction"]);
        var conditions = denoiser.Description.Conditions;
        var ids = conditions.Labels.Select(l => conditions.Resolve(l, name)).ToHashSet();
        if (conditions.NullId is { } nullId)
        {
            ids.Add(nullId);
        }

        return new ServedModel(name, ManifestNames.Denoiser, inputs, output, async (n, values, cancellationToken) =>
        {
            var prediction = new float[n * output.ItemElements];
            // Token ids (INT64) travel as floats inside the engine, exactly.
            var samples = values[0].Floats ?? [.. values[0].Longs!.Select(v => (float)v)];
            await denoiser.PredictAsync(new DenoiserBatch(n, samples, timed ? values[1].Floats : new float[n], conditioned ? values[2].Longs : new long[n]), prediction, cancellationToken).ConfigureAwait(false);
            return prediction;
        })
        { ConditionIds = conditioned ? ids : null };
    }

    /// <summary>
    /// A pipeline's <c>vae_decoder/model.onnx</c> as exported: <c>latent_sample</c> (latents ÷ the scaling factor) →
    /// <c>sample</c>, FP32 on the wire whatever the graph's dtype (an fp16 graph converts at its boundary, as here).
    /// </summary>
    private static ServedModel ForVaeDecoder(string name, DiffusersPipeline pipeline)
    {
        var description = pipeline.Decoder.Description;
        var input = new ServedTensor(DiffusersLayout.LatentSample, OpenInferenceDatatypes.Fp32, [-1, .. description.LatentShape.Dimensions.Select(d => (long)d)]);
        var output = new ServedTensor(DiffusersLayout.Sample, OpenInferenceDatatypes.Fp32, [-1, .. description.ImageShape.Dimensions.Select(d => (long)d)]);
        return new ServedModel(name, KServeStages.VaeDecoder, [input], output, async (n, values, cancellationToken) =>
        {
            var images = new float[n * output.ItemElements];
            await pipeline.DecodeLatentSamplesAsync(n, values[0].Floats!, images, cancellationToken).ConfigureAwait(false);
            return images;
        });
    }

    private static ServedModel ForVerifier(string name, ModelManifest m, IVerifierModel verifier)
    {
        var output = Tensor(m.Outputs!["output"]);
        return new ServedModel(name, ManifestNames.Verifier, [Tensor(m.Inputs!["sample"])], output, async (n, values, cancellationToken) =>
        {
            var rows = new float[n * verifier.OutputWidth];
            await verifier.RunAsync(values[0].Floats, n, rows, cancellationToken).ConfigureAwait(false);
            return rows;
        });
    }
}
