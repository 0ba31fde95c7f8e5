using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using SearchOrchestrator.Onnx.Pipelines;

namespace SearchOrchestrator.Onnx.Tests.Pipelines;

/// <summary>The dtype boundary of pipeline stages: float32 memory in and out, whatever the graph declares.</summary>
public sealed class StageTensorsTests
{
    [Fact]
    public void Times_Float16Timestep_AsDiffusersFp16ExportTakesIt()
    {
        using var value = StageTensors.Times(new float[] { 801, 17 }, [2], TensorElementType.Float16);

        Assert.Equal(TensorElementType.Float16, value.GetTensorTypeAndShape().ElementDataType);
        Assert.Equal([801f, 17f], value.GetTensorDataAsSpan<Float16>().ToArray().Select(h => h.ToFloat()));
    }

    [Fact]
    public void Times_Int64Timestep_AsOptimumExportsIt()
    {
        using var value = StageTensors.Times(new float[] { 801, 17 }, [2], TensorElementType.Int64);

        Assert.Equal([801L, 17L], value.GetTensorDataAsSpan<long>().ToArray());
    }

    [Fact]
    public void Output_Float16_ConvertsIntoTheFloat32Destination()
    {
        var destination = new float[3];
        using var output = StageTensors.Output(destination, [3], TensorElementType.Float16);
        var staged = output.Value.GetTensorMutableDataAsSpan<Float16>();
        staged[0] = (Float16)0.5f;
        staged[1] = (Float16)(-2f);
        staged[2] = (Float16)1024f;

        output.CopyOut();

        Assert.Equal([0.5f, -2f, 1024f], destination);
    }

    [Fact]
    public void Input_Float32_IsBoundInPlace()
    {
        var values = new float[] { 1, 2 };
        using var value = StageTensors.Input(values, [2], TensorElementType.Float);

        values[1] = 7;

        Assert.Equal([1f, 7f], value.GetTensorDataAsSpan<float>().ToArray());
    }
}
