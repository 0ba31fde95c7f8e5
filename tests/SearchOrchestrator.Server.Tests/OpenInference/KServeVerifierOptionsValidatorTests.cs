using Microsoft.Extensions.Configuration;
using SearchOrchestrator.Server.OpenInference;
using SearchOrchestrator.Server.Plugins;

namespace SearchOrchestrator.Server.Tests.OpenInference;

public sealed class KServeVerifierOptionsValidatorTests
{
    private static VerifierPluginOptions Bind(Dictionary<string, string?> settings)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
        return configuration.GetSection(VerifierPluginOptions.SectionName).Get<VerifierPluginOptions>() ?? new VerifierPluginOptions();
    }

    [Fact]
    public void Check_AClassRuleVerifier_BindsAndPasses()
    {
        var options = Bind(new()
        {
            ["Verifiers:Remote:0:Name"] = "reward",
            ["Verifiers:Remote:0:Endpoint"] = "http://triton:8001",
            ["Verifiers:Remote:0:Model"] = "reward_onnx",
            ["Verifiers:Remote:0:Version"] = "2",
            ["Verifiers:Remote:0:CallTimeout"] = "00:00:05",
            ["Verifiers:Remote:0:Tensors:Sample"] = "INPUT__0",
            ["Verifiers:Remote:0:Tensors:Output"] = "logits",
            ["Verifiers:Remote:0:Scoring:Rule"] = "class-log-probability",
            ["Verifiers:Remote:0:Scoring:Labels:0"] = "cat",
            ["Verifiers:Remote:0:Scoring:Labels:1"] = "dog",
        });

        Assert.Empty(KServeVerifierOptionsValidator.Check(options));
        var verifier = Assert.Single(options.Remote);
        Assert.Equal(("reward_onnx", "2", "INPUT__0", "condition", "logits"), (verifier.Model, verifier.Version, verifier.Tensors.Sample, verifier.Tensors.Condition, verifier.Tensors.Output));
        Assert.Equal(TimeSpan.FromSeconds(5), verifier.CallTimeout);
        Assert.Equal(["cat", "dog"], verifier.Scoring.Labels!);
    }

    [Fact]
    public void Check_EveryBadSetting_IsNamed()
    {
        var options = Bind(new()
        {
            ["Verifiers:Remote:0:Name"] = "a",
            ["Verifiers:Remote:0:Endpoint"] = "triton:8001",
            ["Verifiers:Remote:0:CallTimeout"] = "00:00:00",
            ["Verifiers:Remote:0:Tensors:Condition"] = " ",
            ["Verifiers:Remote:0:Scoring:Rule"] = "class-probability",
            ["Verifiers:Remote:1:Name"] = "a",
            ["Verifiers:Remote:1:Endpoint"] = "http://triton:8001",
            ["Verifiers:Remote:1:Model"] = " ",
            ["Verifiers:Remote:1:Scoring:Rule"] = "best",
            ["Verifiers:Remote:2:Endpoint"] = "http://triton:8001",
            ["Verifiers:Remote:2:Scoring:Rule"] = "negative-distance",
        });

        Assert.Equal(
        [
            "Verifiers:Remote:0:Endpoint: 'triton:8001' is not an http:// or https:// address (e.g. http://127.0.0.1:8001).",
            "Verifiers:Remote:0:CallTimeout: must be positive, got 00:00:00.",
            "Verifiers:Remote:0:Tensors:Condition: empty tensor name.",
            "Verifiers:Remote:0:Scoring:Labels: the rule class-probability needs the condition label of each output value.",
            "Verifiers:Remote:1:Name: 'a' is used by an earlier Verifiers:Remote entry.",
            "Verifiers:Remote:1:Model: empty; leave it out to use the Name.",
            "Verifiers:Remote:1:Scoring:Rule: 'best' is not a scoring rule; expected class-probability, class-log-probability, scalar, negative-distance.",
            "Verifiers:Remote:2:Name: empty; requests choose the verifier by this name.",
            "Verifiers:Remote:2:Scoring:Targets: the rule negative-distance needs a target vector per condition.",
        ],
        KServeVerifierOptionsValidator.Check(options));
    }
}
