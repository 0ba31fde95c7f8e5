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
        var options = new ModelRepositoryOptions { Path = " ", ExecutionProvider = "tpu", IntraOpThreads = -1, DeviceId = -2 };

        var result = new ModelRepositoryOptionsValidator().Validate(null, options);

        Assert.True(result.Failed);
        Assert.Equal(
            [
                "Models:Path must name the model repository folder.",
                "Models:ExecutionProvider must be one of auto, cpu, cuda, got 'tpu'.",
                "Models:DeviceId must be >= 0, got -2.",
                "Models:IntraOpThreads must be >= 0 (0 = one per core), got -1.",
            ],
            result.Failures);
    }
}
