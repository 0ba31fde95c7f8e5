using SearchOrchestrator.Onnx.Repository;

namespace SearchOrchestrator.Onnx.Tests.Repository;

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
        var options = new ModelRepositoryOptions { Path = " ", ExecutionProvider = "tpu", IntraOpThreads = -1, DeviceId = -2, Instances = -1 };

        var result = new ModelRepositoryOptionsValidator().Validate(null, options);

        Assert.True(result.Failed);
        Assert.Equal(
            [
                "Models:Path must name the model repository folder.",
                "Models:ExecutionProvider must be one of auto, cpu, cuda, got 'tpu'.",
                "Models:DeviceId must be >= 0, got -2.",
                "Models:IntraOpThreads must be >= 0 (0 = the cores divided among the instances), got -1.",
                "Models:Instances must be between 0 (one per core, up to 4) and 64, got -1.",
            ],
            result.Failures);
    }

    [Theory]
    [InlineData(0, 0, 2, false, 2, 1)]  // this machine: one instance per core, one thread each
    [InlineData(0, 0, 1, false, 1, 1)]
    [InlineData(0, 0, 8, false, 4, 2)]  // at most four instances; the other cores become intra-op threads
    [InlineData(0, 0, 8, true, 1, 8)]   // one instance on a GPU
    [InlineData(1, 0, 2, false, 1, 2)]  // one instance gets every core
    [InlineData(3, 5, 2, false, 3, 5)]  // explicit settings are kept
    public void Threading_Settings_GiveInstancesAndThreads(int instances, int threads, int cores, bool cuda, int expectedInstances, int expectedThreads)
    {
        var options = new ModelRepositoryOptions { Instances = instances, IntraOpThreads = threads };

        Assert.Equal((expectedInstances, expectedThreads), options.Threading(cores, cuda));
    }
}
