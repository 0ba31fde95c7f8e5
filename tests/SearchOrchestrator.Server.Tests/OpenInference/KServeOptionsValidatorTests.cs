using Microsoft.Extensions.Configuration;
using SearchOrchestrator.Server.OpenInference;

namespace SearchOrchestrator.Server.Tests.OpenInference;

public sealed class KServeOptionsValidatorTests
{
    private static KServeOptions Bind(Dictionary<string, string?> settings)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
        return configuration.GetSection(KServeOptions.SectionName).Get<KServeOptions>() ?? new KServeOptions();
    }

    [Fact]
    public void Check_TheReadmesExample_BindsAndPasses()
    {
        var options = Bind(new()
        {
            ["Backends:KServe:0:Endpoint"] = "http://triton:8001",
            ["Backends:KServe:0:CallTimeout"] = "00:00:05",
            ["Backends:KServe:0:Models:counting:RemoteName"] = "counting_onnx",
            ["Backends:KServe:0:Models:counting:Version"] = "3",
            ["Backends:KServe:0:Models:counting:Tensors:sample"] = "INPUT__0",
        });

        Assert.Empty(KServeOptionsValidator.Check(options));
        var endpoint = Assert.Single(options.KServe);
        Assert.Equal(TimeSpan.FromSeconds(5), endpoint.CallTimeout);
        Assert.Equal("counting_onnx", endpoint.Models["counting"].RemoteName);
        Assert.Equal("INPUT__0", endpoint.Models["counting"].Tensors["sample"]);
    }

    [Fact]
    public void Check_EveryBadSetting_IsNamed()
    {
        var options = Bind(new()
        {
            ["Backends:KServe:0:Endpoint"] = "triton:8001",
            ["Backends:KServe:0:CallTimeout"] = "00:00:00",
            ["Backends:KServe:0:Models:counting:RemoteName"] = " ",
            ["Backends:KServe:0:Models:counting:Tensors:noise"] = "x",
            ["Backends:KServe:1:Endpoint"] = "https://ovms:9000",
        });

        var failures = KServeOptionsValidator.Check(options);

        Assert.Equal(
        [
            "Backends:KServe:0:Endpoint: 'triton:8001' is not an http:// or https:// address (e.g. http://triton:8001).",
            "Backends:KServe:0:CallTimeout: must be positive, got 00:00:00.",
            "Backends:KServe:0:Models:counting:RemoteName: empty; leave it out to use 'counting'.",
            "Backends:KServe:0:Models:counting:Tensors:noise: unknown role; expected sample, time, condition, prediction.",
            "Backends:KServe:1:Models: empty; map at least one of our models (Models:<name>:RemoteName …).",
        ], failures);
    }

    [Fact]
    public void Check_PipelineStages_TakeTheVaeDecoderWithItsDiffusersTensorRolesOnly()
    {
        var options = Bind(new()
        {
            ["Backends:KServe:0:Endpoint"] = "http://triton:8001",
            ["Backends:KServe:0:Models:tiny-sd/vae_decoder:RemoteName"] = "vae_decoder",
            ["Backends:KServe:0:Models:tiny-sd/vae_decoder:Tensors:latent_sample"] = "latents",
            ["Backends:KServe:0:Models:tiny-sd/vae_decoder:Tensors:prediction"] = "x",
            ["Backends:KServe:0:Models:tiny-sd/unet:RemoteName"] = "unet",
        });

        var failures = KServeOptionsValidator.Check(options);

        Assert.Equal(
        [
            "Backends:KServe:0:Models:tiny-sd/unet: unknown stage 'unet'; a kserve server runs a pipeline's 'vae_decoder' (<pipeline>/vae_decoder).",
            "Backends:KServe:0:Models:tiny-sd/vae_decoder:Tensors:prediction: unknown role; expected latent_sample, sample.",
        ], failures);
    }
}

/// <summary>With API keys configured, the Open Inference Protocol is guarded like the search service.</summary>
public sealed class OpenInferenceAuthTests(AuthServerFixtureForOpenInference server, LocalModels local) : IClassFixture<AuthServerFixtureForOpenInference>, IClassFixture<LocalModels>
{
    [Fact]
    public async Task ConnectDenoiserAsync_WithoutTheKey_IsUnauthenticated_WithItConnects()
    {
        var options = new KServeEndpointOptions { Endpoint = "http://guarded", Models = { ["counting"] = new KServeModelOptions() } };
        using var without = new KServeEndpoint(options, server.Channel.CreateCallInvoker());
        var error = await Assert.ThrowsAsync<KServeBackendException>(() => without.ConnectDenoiserAsync("counting", local.Manifest("counting")));
        Assert.Equal(global::Grpc.Core.StatusCode.Unauthenticated, error.Status);

        options.ApiKey = Grpc.AuthServerFixture.Bob;
        using var with = new KServeEndpoint(options, server.Channel.CreateCallInvoker());
        var denoiser = await with.ConnectDenoiserAsync("counting", local.Manifest("counting"));
        var output = new float[576];
        await denoiser.PredictAsync(new Denoising.DenoiserBatch(1, new float[576], new[] { 100f }, new[] { 2L }), output);
        Assert.Contains(output, v => v != 0);
    }
}

/// <summary>The API-key server of the gRPC tests, as a fixture of its own for this class.</summary>
public sealed class AuthServerFixtureForOpenInference : Grpc.ServerFixture
{
    protected override string[] ExtraArguments =>
    [
        "--Auth:ApiKeys:0:Name", "bob", "--Auth:ApiKeys:0:Key", Grpc.AuthServerFixture.Bob,
    ];
}
