using System.Text.Json;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using SearchOrchestrator.Denoising;
using SearchOrchestrator.Onnx.Runtime;
using SearchOrchestrator.Tensors;
using L = SearchOrchestrator.Onnx.Pipelines.DiffusersLayout;

namespace SearchOrchestrator.Onnx.Pipelines;

/// <summary>
/// Loads one folder in the diffusers ONNX layout: checks <c>model_index.json</c>, the scheduler config, the tokenizer
/// files and every stage's tensors (names, dtypes, ranks, and that the stages' shapes chain), collecting every error
/// with the file and field it is about; then creates the sessions and, when asked, runs each stage once.
/// </summary>
internal static class DiffusersPipelineLoader
{
    private static readonly string[] Components = [L.Tokenizer, L.TextEncoder, L.Unet, L.VaeDecoder, L.Scheduler];
    private static readonly TensorElementType[] Floats = [TensorElementType.Float, TensorElementType.Float16];

    /// <summary>True when <paramref name="folder"/> looks like a diffusers pipeline, complete or not.</summary>
    public static bool LooksLikePipeline(string folder) =>
        File.Exists(Path.Combine(folder, L.ModelIndex))
        || new[] { L.TextEncoder, L.Unet, L.VaeDecoder }.Any(c => File.Exists(Path.Combine(folder, c, L.ModelFile)));

    public static (DiffusersPipeline? Pipeline, IReadOnlyList<PipelineStage> Stages, List<string> Errors) Load(string name, string folder, OnnxSessionFactory sessions, bool warmUp)
    {
        var errors = new List<string>();
        var index = ReadJson(folder, L.ModelIndex, errors, required: true);
        if (index is { } ix)
        {
            foreach (var component in Components)
            {
                if (!ix.TryGetProperty(component, out var entry) || entry.ValueKind != JsonValueKind.Array || entry.GetArrayLength() != 2 || entry[1].ValueKind != JsonValueKind.String)
                {
                    errors.Add($"{L.ModelIndex}: {component}: missing (a Stable Diffusion pipeline needs {string.Join(", ", Components)} as [library, class])");
                }
            }
        }

        foreach (var stage in new[] { L.TextEncoder, L.Unet, L.VaeDecoder })
        {
            if (!File.Exists(Path.Combine(folder, stage, L.ModelFile)))
            {
                errors.Add($"{stage}/{L.ModelFile}: missing");
            }
        }

        var (process, schedulerErrors) = SchedulerConfig.Read(folder);
        errors.AddRange(schedulerErrors);
        var textConfig = ReadJson(folder, $"{L.TextEncoder}/{L.ConfigFile}", errors);
        var unetConfig = ReadJson(folder, $"{L.Unet}/{L.ConfigFile}", errors);
        var vaeConfig = ReadJson(folder, $"{L.VaeDecoder}/{L.ConfigFile}", errors);
        ClipTokenizer? tokenizer = null;
        try
        {
            tokenizer = ClipTokenizer.Load(Path.Combine(folder, L.Tokenizer), Int(textConfig, "max_position_embeddings") ?? 77);
        }
        catch (PipelineLayoutException ex)
        {
            errors.Add(ex.Message);
        }

        if (errors.Count > 0)
        {
            return (null, [], errors);
        }

        var owned = new List<IDisposable>();
        try
        {
            var text = Open(folder, L.TextEncoder, sessions, owned);
            var unet = Open(folder, L.Unet, sessions, owned);
            var decoder = Open(folder, L.VaeDecoder, sessions, owned);
            var stages = new[] { Stage(L.TextEncoder, text), Stage(L.Unet, unet), Stage(L.VaeDecoder, decoder) };

            var idsType = Expect(errors, L.TextEncoder, text.InputMetadata, L.InputIds, 2, [TensorElementType.Int32, TensorElementType.Int64], only: true);
            var hiddenType = Expect(errors, L.TextEncoder, text.OutputMetadata, L.LastHiddenState, 3, Floats);
            var sampleType = Expect(errors, L.Unet, unet.InputMetadata, L.Sample, 4, Floats, only: true, also: [L.Timestep, L.EncoderHiddenStates]);
            var timeType = Expect(errors, L.Unet, unet.InputMetadata, L.Timestep, 1, [TensorElementType.Float, TensorElementType.Float16, TensorElementType.Int64, TensorElementType.Int32]);
            var statesType = Expect(errors, L.Unet, unet.InputMetadata, L.EncoderHiddenStates, 3, Floats);
            var outType = Expect(errors, L.Unet, unet.OutputMetadata, L.OutSample, 4, Floats);
            var latentType = Expect(errors, L.VaeDecoder, decoder.InputMetadata, L.LatentSample, 4, Floats, only: true);
            var imageType = Expect(errors, L.VaeDecoder, decoder.OutputMetadata, L.Sample, 4, Floats);
            if (errors.Count > 0)
            {
                Dispose(owned);
                return (null, stages, errors);
            }

            var length = tokenizer!.MaxLength;
            var idsLength = Dim(text.InputMetadata[L.InputIds], 1);
            if (idsLength is { } fixedLength && fixedLength != length)
            {
                errors.Add($"{L.Tokenizer}/tokenizer_config.json: model_max_length: {length}, but {L.TextEncoder}/{L.ModelFile}'s {L.InputIds} takes {fixedLength} tokens");
            }

            if (Int(textConfig, "max_position_embeddings") is { } positions && positions < length)
            {
                errors.Add($"{L.Tokenizer}/tokenizer_config.json: model_max_length: {length}, but {L.TextEncoder}/{L.ConfigFile}: max_position_embeddings is {positions}");
            }

            var hidden = Agree(errors, "hidden size", [
                ($"{L.TextEncoder}/{L.ModelFile}: {L.LastHiddenState} axis 2", Dim(text.OutputMetadata[L.LastHiddenState], 2)),
                ($"{L.TextEncoder}/{L.ConfigFile}: hidden_size", Int(textConfig, "hidden_size")),
                ($"{L.Unet}/{L.ModelFile}: {L.EncoderHiddenStates} axis 2", Dim(unet.InputMetadata[L.EncoderHiddenStates], 2)),
                ($"{L.Unet}/{L.ConfigFile}: cross_attention_dim", Int(unetConfig, "cross_attention_dim"))], fallback: null);
            var channels = Agree(errors, "latent channels", [
                ($"{L.Unet}/{L.ModelFile}: {L.Sample} axis 1", Dim(unet.InputMetadata[L.Sample], 1)),
                ($"{L.Unet}/{L.ModelFile}: {L.OutSample} axis 1", Dim(unet.OutputMetadata[L.OutSample], 1)),
                ($"{L.Unet}/{L.ConfigFile}: in_channels", Int(unetConfig, "in_channels")),
                ($"{L.Unet}/{L.ConfigFile}: out_channels", Int(unetConfig, "out_channels")),
                ($"{L.VaeDecoder}/{L.ModelFile}: {L.LatentSample} axis 1", Dim(decoder.InputMetadata[L.LatentSample], 1)),
                ($"{L.VaeDecoder}/{L.ConfigFile}: latent_channels", Int(vaeConfig, "latent_channels"))], fallback: 4);
            // diffusers' converter leaves the latent size dynamic and writes no config: OnnxStableDiffusionPipeline's 512 px ÷ 8.
            var height = Agree(errors, "latent height", [
                ($"{L.Unet}/{L.ModelFile}: {L.Sample} axis 2", Dim(unet.InputMetadata[L.Sample], 2)),
                ($"{L.Unet}/{L.ConfigFile}: sample_size", SampleSize(unetConfig, 0))], fallback: 64);
            var width = Agree(errors, "latent width", [
                ($"{L.Unet}/{L.ModelFile}: {L.Sample} axis 3", Dim(unet.InputMetadata[L.Sample], 3)),
                ($"{L.Unet}/{L.ConfigFile}: sample_size", SampleSize(unetConfig, 1))], fallback: 64);
            if (hidden is null && errors.Count == 0)
            {
                errors.Add($"{L.TextEncoder}/{L.ConfigFile}: hidden_size: missing, and every graph leaves the hidden size dynamic");
            }

            var scaling = Number(vaeConfig, "scaling_factor") ?? Number(index, "scaling_factor") ?? L.DefaultScalingFactor;
            if (!(scaling > 0))
            {
                errors.Add($"{L.VaeDecoder}/{L.ConfigFile}: scaling_factor: must be positive, got {scaling}");
            }

            if (errors.Count > 0)
            {
                Dispose(owned);
                return (null, stages, errors);
            }

            var latentShape = new SampleShape(channels!.Value, height!.Value, width!.Value);
            var imageShape = ImageShape(decoder, latentShape, latentType);
            var prompt = new TextEncoderDescription { Name = name, SequenceLength = length, HiddenSize = hidden!.Value };
            var description = new DenoiserDescription { Name = name, SampleShape = latentShape, Process = process!, Conditions = ConditionVocabulary.FreeText };
            var unetTypes = new L.UnetTypes(sampleType, timeType, statesType, outType);
            var denoisers = new List<IPromptDenoiser> { new OnnxPromptDenoiser(unet, description, prompt, unetTypes) };
            while (denoisers.Count < sessions.Instances)
            {
                denoisers.Add(new OnnxPromptDenoiser(Open(folder, L.Unet, sessions, owned), description, prompt, unetTypes));
            }

            var encoder = new OnnxTextEncoder(text, tokenizer, prompt, idsType, hiddenType);
            var vae = new OnnxVaeDecoder(decoder, new DecoderDescription { Name = name, LatentShape = latentShape, ImageShape = imageShape, ScalingFactor = scaling }, latentType, imageType);
            var pipeline = new DiffusersPipeline(name, tokenizer, encoder, denoisers, vae, stages, owned);
            if (warmUp)
            {
                WarmUp(pipeline);
            }

            return (pipeline, stages, errors);
        }
        catch
        {
            Dispose(owned);
            throw;
        }
    }

    private static void WarmUp(DiffusersPipeline pipeline)
    {
        var prompt = pipeline.TextEncoder.Description;
        var embedding = new float[prompt.EmbeddingElements];
        pipeline.TextEncoder.EncodeAsync([string.Empty], embedding).GetAwaiter().GetResult();
        var latent = pipeline.Denoiser.Description.SampleShape.ElementCount;
        var output = new float[latent];
        foreach (var denoiser in pipeline.DenoiserInstances)
        {
            denoiser.PredictAsync(new PromptDenoiserBatch(1, new float[latent], new float[] { 1 }, embedding), output).GetAwaiter().GetResult();
        }

        pipeline.Decoder.DecodeAsync(1, output, new float[pipeline.Decoder.Description.ImageShape.ElementCount]).GetAwaiter().GetResult();
    }

    // The image size: the decoder graph's when it is fixed, else what one pass over a zero latent returns.
    private static SampleShape ImageShape(InferenceSession decoder, SampleShape latent, TensorElementType latentType)
    {
        var declared = decoder.OutputMetadata[L.Sample].Dimensions;
        if (declared.Skip(1).All(d => d > 0))
        {
            return new SampleShape([.. declared.Skip(1)]);
        }

        using var input = StageTensors.Input(new float[latent.ElementCount], latent.WithBatch(1), latentType);
        using var options = new RunOptions();
        using var outputs = decoder.Run(options, [L.LatentSample], [input], [L.Sample]);
        return new SampleShape([.. outputs[0].GetTensorTypeAndShape().Shape.Skip(1).Select(d => (int)d)]);
    }

    private static InferenceSession Open(string folder, string stage, OnnxSessionFactory sessions, List<IDisposable> owned)
    {
        try
        {
            var session = sessions.Create(Path.Combine(folder, stage, L.ModelFile));
            owned.Add(session);
            return session;
        }
        catch (OnnxRuntimeException ex)
        {
            throw new PipelineLayoutException($"{stage}/{L.ModelFile}", ex.Message);
        }
    }

    private static PipelineStage Stage(string stage, InferenceSession session)
    {
        static IReadOnlyList<StageTensor> Tensors(IReadOnlyDictionary<string, NodeMetadata> metadata) =>
            [.. metadata.Select(m => new StageTensor(m.Key, DtypeName(m.Value.ElementDataType), [.. m.Value.Dimensions.Select(d => (long)d)]))];
        return new PipelineStage(stage, $"{stage}/{L.ModelFile}", Tensors(session.InputMetadata), Tensors(session.OutputMetadata));
    }

    internal static string DtypeName(TensorElementType type) => type switch
    {
        TensorElementType.Float => "float32",
        TensorElementType.Float16 => "float16",
        TensorElementType.Int64 => "int64",
        TensorElementType.Int32 => "int32",
        _ => type.ToString().ToLowerInvariant(),
    };

    // Checks one tensor's presence, rank and dtype; with `only`, also that the graph has no inputs beyond the expected ones.
    private static TensorElementType Expect(List<string> errors, string stage, IReadOnlyDictionary<string, NodeMetadata> metadata, string tensor, int rank, TensorElementType[] dtypes, bool only = false, string[]? also = null)
    {
        var file = $"{stage}/{L.ModelFile}";
        if (only)
        {
            var expected = new[] { tensor }.Concat(also ?? []).ToHashSet(StringComparer.Ordinal);
            foreach (var extra in metadata.Keys.Where(k => !expected.Contains(k)))
            {
                errors.Add($"{file}: input '{extra}' is not one the converter writes (expected {string.Join(", ", expected)})");
            }
        }

        if (!metadata.TryGetValue(tensor, out var m))
        {
            errors.Add($"{file}: {tensor}: missing (the graph has {string.Join(", ", metadata.Keys)})");
            return TensorElementType.Float;
        }

        if (m.Dimensions.Length != rank)
        {
            errors.Add($"{file}: {tensor}: rank {m.Dimensions.Length}, expected {rank}");
        }

        if (!dtypes.Contains(m.ElementDataType))
        {
            errors.Add($"{file}: {tensor}: dtype {DtypeName(m.ElementDataType)}, expected {string.Join(" or ", dtypes.Select(DtypeName))}");
        }

        return m.ElementDataType;
    }

    private static int? Dim(NodeMetadata m, int axis) => m.Dimensions.Length > axis && m.Dimensions[axis] > 0 ? m.Dimensions[axis] : null;

    // Every source that states a value must state the same one; none stating one gives the fallback.
    private static int? Agree(List<string> errors, string what, (string Source, int? Value)[] sources, int? fallback)
    {
        var stated = sources.Where(s => s.Value is not null).ToList();
        if (stated.Select(s => s.Value).Distinct().Count() > 1)
        {
            errors.Add($"{stated[^1].Source}: {stated[^1].Value}, but {stated[0].Source} is {stated[0].Value} ({what} must agree)");
        }

        return stated.Count > 0 ? stated[0].Value : fallback;
    }

    private static int? SampleSize(JsonElement? config, int axis) =>
        config is { } c && c.TryGetProperty("sample_size", out var v)
            ? v.ValueKind == JsonValueKind.Number ? v.GetInt32()
            : v.ValueKind == JsonValueKind.Array && v.GetArrayLength() == 2 ? v[axis].GetInt32() : null
            : null;

    private static int? Int(JsonElement? config, string field) =>
        config is { } c && c.TryGetProperty(field, out var v) && v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out var i) ? i : null;

    private static double? Number(JsonElement? config, string field) =>
        config is { } c && c.TryGetProperty(field, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetDouble() : null;

    private static JsonElement? ReadJson(string folder, string file, List<string> errors, bool required = false) =>
        ConfigJson.Read(folder, file, errors, required ? "missing (a folder in the diffusers layout starts with it)" : null);

    private static void Dispose(List<IDisposable> owned)
    {
        owned.ForEach(o => o.Dispose());
        owned.Clear();
    }
}
