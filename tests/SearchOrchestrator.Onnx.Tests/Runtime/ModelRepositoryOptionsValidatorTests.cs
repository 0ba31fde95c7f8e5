using SearchOrchestrator.Onnx.Repository;
using SearchOrchestrator.Onnx.Runtime;

namespace SearchOrchestrator.Onnx.Tests.Runtime;

public sealed class ModelRepositoryOptionsValidatorTests
{
    [Fact]
    public void Validate_Defaults_Succeed()
    {
        Assert.True(new ModelRepositoryOptionsValidator().Validate(null, new ModelRepositoryOptions()).Succeeded);
    }

    [Fact]
    public void Validate_SeveralBadSettings_NamesEveryOne()
    {
        var options = new ModelRepositoryOptions { Path = " ", ExecutionProvider = "tpu", IntraOpThreads = -1, DeviceId = -2, Instances = -1, LonePassThreads = -3 };

        var result = new ModelRepositoryOptionsValidator().Validate(null, options);

        Assert.True(result.Failed);
        Assert.Equal(
            [
                "Models:Path must name the model repository folder.",
                "Models:ExecutionProvider must be one of auto, cpu, cuda, tensorrt, got 'tpu'.",
                "Models:DeviceId must be >= 0, got -2.",
                "Models:IntraOpThreads must be >= 0 (0 = the cores divided among the instances), got -1.",
                "Models:Instances must be between 0 (one per core, up to 4) and 64, got -1.",
                "Models:LonePassThreads must be >= 0 (0 = the machine's cores, 1 = no lone-pass session), got -3.",
            ],
            result.Failures);
    }

    [Theory]
    [InlineData(0, 0, 0, 2, false, 2, 1, 2)]  // this machine: one instance per core, one thread each; a lone pass on both
    [InlineData(0, 0, 0, 1, false, 1, 1, 0)]  // one core: nothing to widen
    [InlineData(0, 0, 0, 8, false, 4, 2, 8)]  // at most four instances; the other cores become intra-op threads
    [InlineData(0, 0, 0, 8, true, 1, 8, 0)]   // one instance on a GPU, no lone-pass session
    [InlineData(1, 0, 0, 2, false, 1, 2, 0)]  // one instance gets every core already
    [InlineData(3, 5, 0, 2, false, 3, 5, 0)]  // explicit settings are kept; a lone pass would not be wider
    [InlineData(2, 1, 1, 2, false, 2, 1, 0)]  // LonePassThreads 1 turns the rule off
    [InlineData(2, 1, 4, 2, false, 2, 1, 4)]  // an explicit lone-pass width is kept
    public void Threading_Settings_GiveInstancesThreadsAndLonePassThreads(int instances, int threads, int lone, int cores, bool cuda, int expectedInstances, int expectedThreads, int expectedLone)
    {
        var options = new ModelRepositoryOptions { Instances = instances, IntraOpThreads = threads, LonePassThreads = lone };

        Assert.Equal((expectedInstances, expectedThreads, expectedLone), options.Threading(cores, cuda));
    }
}
