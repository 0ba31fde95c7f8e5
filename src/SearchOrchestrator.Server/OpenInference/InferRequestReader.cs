using Grpc.Core;
using SearchOrchestrator.Protos.Inference;
using SearchOrchestrator.Server.Internal;

namespace SearchOrchestrator.Server.OpenInference;

/// <summary>
/// Checks a <c>ModelInfer</c> request against the model's tensors and decodes its inputs, from
/// <c>raw_input_contents</c> or from the typed <c>contents</c> lists. Every refusal is <c>INVALID_ARGUMENT</c> with a
/// message that names the tensor and says what was expected.
/// </summary>
internal static class InferRequestReader
{
    /// <summary>The largest batch one request may carry.</summary>
    public const int MaxBatch = 65536;

    public static (int Batch, InputValues[] Inputs) Read(ServedModel model, ModelInferRequest request)
    {
        var raw = request.RawInputContents;
        if (raw.Count > 0 && raw.Count != request.Inputs.Count)
        {
            throw Invalid($"raw_input_contents has {raw.Count} entries but inputs has {request.Inputs.Count}; send one raw entry per input, in the same order.");
        }

        var byName = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < request.Inputs.Count; i++)
        {
            var name = request.Inputs[i].Name;
            if (model.Inputs.All(t => t.Name != name))
            {
                throw Invalid($"input {CallerInput.Quote(name)}: model '{model.Name}' has no such input; its inputs are {Describe(model.Inputs)}.");
            }

            if (!byName.TryAdd(name, i))
            {
                throw Invalid($"input {CallerInput.Quote(name)} appears twice.");
            }
        }

        var missing = model.Inputs.Where(t => !byName.ContainsKey(t.Name)).Select(t => $"'{t.Name}' ({t.Datatype} {OpenInferenceDatatypes.Format(t.Shape)})").ToList();
        if (missing.Count > 0)
        {
            throw Invalid($"model '{model.Name}' needs the input{(missing.Count > 1 ? "s" : string.Empty)} {string.Join(", ", missing)}, missing from the request.");
        }

        foreach (var output in request.Outputs)
        {
            if (output.Name != model.Output.Name)
            {
                throw Invalid($"requested output {CallerInput.Quote(output.Name)}: model '{model.Name}' has the one output '{model.Output.Name}'.");
            }
        }

        int? batch = null;
        var values = new InputValues[model.Inputs.Count];
        for (var k = 0; k < model.Inputs.Count; k++)
        {
            var spec = model.Inputs[k];
            var index = byName[spec.Name];
            var tensor = request.Inputs[index];
            var n = CheckShape(spec, tensor, ref batch);
            var elements = (long)n * spec.ItemElements;
            if (elements > Array.MaxLength / sizeof(long))
            {
                throw Invalid($"input '{spec.Name}': a batch of {n} is {elements} elements, more than one request may carry; send smaller batches.");
            }

            values[k] = raw.Count > 0
                ? FromRaw(spec, tensor, raw[index].Span, (int)elements)
                : FromContents(spec, tensor, (int)elements);
            if (values[k].Floats is { } floats && TensorCodec.FirstNonFinite(floats) is var bad and >= 0)
            {
                throw Invalid($"input '{spec.Name}': element {bad} is {floats[bad]}; inputs must be finite.");
            }
        }

        if (model.ConditionIds is { } ids)
        {
            var condition = values.Single(v => v.Longs is not null);
            foreach (var id in condition.Longs!)
            {
                if (!ids.Contains(id))
                {
                    throw Invalid($"input '{condition.Spec.Name}': condition id {id} is not one model '{model.Name}' knows; expected one of {string.Join(", ", ids.Order())}.");
                }
            }
        }

        return (batch!.Value, values);
    }

    private static int CheckShape(ServedTensor spec, ModelInferRequest.Types.InferInputTensor tensor, ref int? batch)
    {
        if (tensor.Datatype != spec.Datatype)
        {
            throw Invalid($"input '{spec.Name}': datatype is {CallerInput.Quote(tensor.Datatype)}, expected {spec.Datatype}.");
        }

        var shape = tensor.Shape;
        // A per-item scalar ([-1]) may also come as [n, 1]: ModelConfig declares it as dims [1] with an empty reshape.
        var ok = (shape.Count == spec.Shape.Length || (spec.Shape.Length == 1 && shape.Count == 2 && shape[1] == 1)) && shape[0] is >= 1 and <= MaxBatch;
        for (var d = 1; ok && d < spec.Shape.Length; d++)
        {
            ok = shape[d] == spec.Shape[d];
        }

        if (!ok)
        {
            throw Invalid($"input '{spec.Name}': shape is {OpenInferenceDatatypes.Format(shape)}, expected {OpenInferenceDatatypes.Format(spec.Shape)}{(spec.Shape.Length == 1 ? " (or [-1, 1])" : string.Empty)} with a batch of 1 to {MaxBatch} in place of -1.");
        }

        var n = (int)shape[0];
        if (batch is { } b && b != n)
        {
            throw Invalid($"input '{spec.Name}': batch is {n} but an earlier input has batch {b}; every input needs the same batch.");
        }

        batch = n;
        return n;
    }

    private static InputValues FromRaw(ServedTensor spec, ModelInferRequest.Types.InferInputTensor tensor, ReadOnlySpan<byte> bytes, int elements)
    {
        if (tensor.Contents is not null)
        {
            throw Invalid($"input '{spec.Name}': has both contents and raw_input_contents; the request uses raw_input_contents, so leave contents empty.");
        }

        var size = OpenInferenceDatatypes.ElementSize(spec.Datatype);
        if (bytes.Length != (long)elements * size)
        {
            throw Invalid($"input '{spec.Name}': raw_input_contents holds {bytes.Length} bytes, expected {(long)elements * size} ({elements} {spec.Datatype} elements of {size} bytes, little-endian).");
        }

        return spec.Datatype == OpenInferenceDatatypes.Fp32
            ? new InputValues(spec, TensorCodec.Decode<float>(bytes)!, null)
            : new InputValues(spec, null, TensorCodec.Decode<long>(bytes)!);
    }

    private static InputValues FromContents(ServedTensor spec, ModelInferRequest.Types.InferInputTensor tensor, int elements)
    {
        var contents = tensor.Contents ?? new InferTensorContents();
        var isFloat = spec.Datatype == OpenInferenceDatatypes.Fp32;
        var list = isFloat ? "fp32_contents" : "int64_contents";
        var count = isFloat ? contents.Fp32Contents.Count : contents.Int64Contents.Count;
        var others = contents.BoolContents.Count + contents.IntContents.Count + contents.UintContents.Count + contents.Uint64Contents.Count
            + contents.Fp64Contents.Count + contents.BytesContents.Count + (isFloat ? contents.Int64Contents.Count : contents.Fp32Contents.Count);
        if (others > 0)
        {
            throw Invalid($"input '{spec.Name}': a {spec.Datatype} tensor's values go in contents.{list}; another contents list holds {others} values.");
        }

        if (count != elements)
        {
            throw Invalid($"input '{spec.Name}': contents.{list} holds {count} values, expected {elements} (the product of the shape).");
        }

        return isFloat
            ? new InputValues(spec, [.. contents.Fp32Contents], null)
            : new InputValues(spec, null, [.. contents.Int64Contents]);
    }

    private static string Describe(IEnumerable<ServedTensor> tensors) =>
        string.Join(", ", tensors.Select(t => $"'{t.Name}' ({t.Datatype} {OpenInferenceDatatypes.Format(t.Shape)})"));

    private static RpcException Invalid(string message) => new(new Status(StatusCode.InvalidArgument, message));
}
