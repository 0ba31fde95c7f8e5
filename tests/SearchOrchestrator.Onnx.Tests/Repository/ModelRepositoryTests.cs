using System.Text.Json.Nodes;
using SearchOrchestrator.Onnx.Repository;
using SearchOrchestrator.Onnx.Runtime;
using SearchOrchestrator.Tests;

namespace SearchOrchestrator.Onnx.Tests.Repository;

public sealed class ModelRepositoryTests
{
    private static ModelRepository Load(string path) =>
        ModelRepository.Load(new ModelRepositoryOptions { Path = path, ExecutionProvider = "cpu", IntraOpThreads = 1 });

    [Fact]
    public void Load_ShippedModels_AreAllReadyOnCpu()
    {
        using var repository = Load(RepositoryPaths.Models);

        Assert.Equal("cpu", repository.ExecutionProvider);
        Assert.Equal(["count-verifier", "count-verifier-t", "counting", "shapes-t2i", "shapes-t2i-verifier", "sudoku"], repository.Models.Select(m => m.Name));
        Assert.Equal("pipeline", repository.Models.Single(m => m.Name == "shapes-t2i").Kind);
        Assert.All(repository.Models, m => Assert.True(m.IsReady, m.Error));
        Assert.Equal("counting", repository.GetDenoiser("counting").Description.Name);
        Assert.Equal("count-verifier", repository.GetVerifier("count-verifier").Name);
    }

    [Fact]
    public async Task Load_TwoInstances_EachIsASessionOfTheSameModel()
    {
        using var repository = ModelRepository.Load(new ModelRepositoryOptions { Path = RepositoryPaths.Models, ExecutionProvider = "cpu", Instances = 2, IntraOpThreads = 1, WarmUp = false });
        var denoiser = Assert.IsAssignableFrom<Denoising.IMultiInstanceDenoiser>(repository.GetDenoiser("counting"));
        var elements = denoiser.Description.SampleShape.ElementCount;
        var batch = new Denoising.DenoiserBatch(1, Enumerable.Range(0, elements).Select(i => (float)Math.Sin(i)).ToArray(), new float[] { 500 }, new long[] { 3 });
        var outputs = new[] { new float[elements], new float[elements] };

        await Task.WhenAll(denoiser.Instances.Select((instance, i) => instance.PredictAsync(batch, outputs[i])));

        Assert.Equal(2, denoiser.Instances.Count);
        Assert.NotSame(denoiser.Instances[0], denoiser.Instances[1]);
        Assert.Equal(outputs[0], outputs[1]);
        Assert.Contains(outputs[0], v => v != 0);
    }

    [Fact]
    public async Task Load_TwoInstancesOfOneThreadOnTwoCores_AddsALonePassSessionWithTheSameOutputs()
    {
        using var repository = ModelRepository.Load(new ModelRepositoryOptions { Path = RepositoryPaths.Models, ExecutionProvider = "cpu", Instances = 2, IntraOpThreads = 1, LonePassThreads = 2, WarmUp = false });
        var denoiser = Assert.IsAssignableFrom<Denoising.IMultiInstanceDenoiser>(repository.GetDenoiser("counting"));
        var elements = denoiser.Description.SampleShape.ElementCount;
        var batch = new Denoising.DenoiserBatch(1, Enumerable.Range(0, elements).Select(i => (float)Math.Cos(i)).ToArray(), new float[] { 700 }, new long[] { 5 });
        var outputs = new[] { new float[elements], new float[elements] };

        await denoiser.Instances[0].PredictAsync(batch, outputs[0]);
        await denoiser.LonePass!.PredictAsync(batch, outputs[1]);

        Assert.Equal(2, denoiser.Instances.Count);
        Assert.DoesNotContain(denoiser.LonePass, denoiser.Instances);
        Assert.Equal(outputs[0], outputs[1]);
    }

    [Fact]
    public void Load_LonePassThreadsOne_HasNoLonePassSession()
    {
        using var repository = ModelRepository.Load(new ModelRepositoryOptions { Path = RepositoryPaths.Models, ExecutionProvider = "cpu", Instances = 2, IntraOpThreads = 1, LonePassThreads = 1, WarmUp = false });

        Assert.Null(Assert.IsAssignableFrom<Denoising.IMultiInstanceDenoiser>(repository.GetDenoiser("counting")).LonePass);
    }

    [Fact]
    public void Load_AutoProviderWithoutCuda_FallsBackToCpu()
    {
        using var repository = ModelRepository.Load(new ModelRepositoryOptions { Path = RepositoryPaths.Models, ExecutionProvider = "cuda", WarmUp = false });

        Assert.Equal("cpu", repository.ExecutionProvider);
        Assert.All(repository.Models, m => Assert.True(m.IsReady, m.Error));
    }

    [Fact]
    public void Load_HashMismatch_FailsThatModelNamingSha256AndServesTheOthers()
    {
        using var temp = new TemporaryRepository("counting", "count-verifier");
        temp.EditManifest("count-verifier", m => m["sha256"] = new string('0', 64));

        using var repository = Load(temp.Path);

        var broken = repository.Models.Single(m => m.Name == "count-verifier");
        Assert.False(broken.IsReady);
        Assert.StartsWith("model 'count-verifier': sha256: the manifest says 0000", broken.Error);
        Assert.Contains("but model.onnx hashes to", broken.Error);
        Assert.True(repository.Models.Single(m => m.Name == "counting").IsReady);
        var ex = Assert.Throws<ModelNotFoundException>(() => repository.GetVerifier("count-verifier"));
        Assert.Contains("failed to load", ex.Message);
        Assert.Contains("sha256", ex.Message);
    }

    [Fact]
    public void Load_ModifiedOnnxFile_FailsTheHashCheck()
    {
        using var temp = new TemporaryRepository("count-verifier");
        File.AppendAllText(Path.Combine(temp.Path, "count-verifier", "model.onnx"), " ");

        using var repository = Load(temp.Path);

        Assert.Contains("sha256: the manifest says", repository.Models.Single().Error);
    }

    [Theory]
    [InlineData("name", "logits", "outputs.output.name: model.onnx has no output 'scores'")]
    [InlineData("shape", "logits", "outputs.output.shape: the manifest says [-1, 12] but model.onnx declares [-1, 11]")]
    [InlineData("dtype", "image", "inputs.sample.dtype: must be float32, got int64")]
    public void Load_ManifestDisagreesWithOnnxMetadata_FailsNamingTheField(string field, string tensor, string expected)
    {
        using var temp = new TemporaryRepository("count-verifier");
        temp.EditManifest("count-verifier", m =>
        {
            var spec = tensor == "logits" ? m["outputs"]!["output"]! : m["inputs"]!["sample"]!;
            switch (field)
            {
                case "name":
                    spec["name"] = "scores";
                    break;
                case "shape":
                    spec["shape"] = new JsonArray(-1, 12);
                    m["scoring"]!["labels"] = new JsonArray(Enumerable.Range(0, 12).Select(i => (JsonNode)i.ToString()).ToArray());
                    break;
                default:
                    spec["dtype"] = "int64";
                    break;
            }
        });

        using var repository = Load(temp.Path);

        var entry = repository.Models.Single();
        Assert.False(entry.IsReady);
        Assert.Contains(expected, entry.Error);
    }

    [Fact]
    public void Load_InputShapeDisagreesWithGraph_FailsNamingInputsSampleShape()
    {
        using var temp = new TemporaryRepository("counting");
        temp.EditManifest("counting", m =>
        {
            m["inputs"]!["sample"]!["shape"] = new JsonArray(-1, 3, 24, 24);
            m["outputs"]!["prediction"]!["shape"] = new JsonArray(-1, 3, 24, 24);
        });

        using var repository = Load(temp.Path);

        Assert.Contains("inputs.sample.shape: the manifest says [-1, 3, 24, 24] but model.onnx declares [-1, 1, 24, 24]", repository.Models.Single().Error);
    }

    [Fact]
    public void Load_BrokenJson_FailsNamingTheManifestFile()
    {
        using var temp = new TemporaryRepository("count-verifier");
        File.WriteAllText(temp.ManifestPath("count-verifier"), "{ \"name\": \"count-verifier\", ");

        using var repository = Load(temp.Path);

        Assert.StartsWith("model 'count-verifier': model.json:", repository.Models.Single().Error);
    }

    [Fact]
    public void Load_UnknownManifestField_FailsNamingIt()
    {
        using var temp = new TemporaryRepository("count-verifier");
        temp.EditManifest("count-verifier", m => m["predicton"] = "epsilon");

        using var repository = Load(temp.Path);

        Assert.Contains("predicton", repository.Models.Single().Error);
    }

    [Fact]
    public void Load_MissingOnnxFile_Fails()
    {
        using var temp = new TemporaryRepository("count-verifier");
        File.Delete(Path.Combine(temp.Path, "count-verifier", "model.onnx"));

        using var repository = Load(temp.Path);

        Assert.Contains("model.onnx: missing beside model.json", repository.Models.Single().Error);
    }

    [Fact]
    public void Load_MissingFolder_ThrowsNamingTheSetting()
    {
        var ex = Assert.Throws<DirectoryNotFoundException>(() => Load("/nonexistent/models"));

        Assert.Contains("Models:Path", ex.Message);
    }

    [Fact]
    public void GetDenoiser_UnknownName_ThrowsNotFoundListingAvailable()
    {
        using var repository = Load(RepositoryPaths.Models);

        var ex = Assert.Throws<ModelNotFoundException>(() => repository.GetDenoiser("../etc/passwd"));

        Assert.Equal("no denoiser named '../etc/passwd' in the model repository; available: counting, sudoku.", ex.Message);
    }

    [Fact]
    public void GetDenoiser_ModelIsAVerifier_ThrowsInvalidRequest()
    {
        using var repository = Load(RepositoryPaths.Models);

        var ex = Assert.Throws<InvalidRequestException>(() => repository.GetDenoiser("count-verifier"));

        Assert.Equal("model 'count-verifier' is a verifier, not a denoiser.", ex.Message);
    }
}
