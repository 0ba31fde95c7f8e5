using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.ML.OnnxRuntime;
using SearchOrchestrator.Onnx.Manifests;
using SearchOrchestrator.Onnx.Repository;
using SearchOrchestrator.Onnx.Runtime;
using SearchOrchestrator.Tensors;
using SearchOrchestrator.Tests;
using SearchOrchestrator.Verifiers;

namespace SearchOrchestrator.Onnx.Tests.Pipelines;

/// <summary>
/// The shapes-t2i family's learned verifier (<c>models/shapes-t2i/verifier</c>), served as <c>shapes-t2i-verifier</c>:
/// it tokenizes each sample's condition with the family's CLIP tokenizer and scores (image, input_ids) pairs.
/// </summary>
public sealed class OnnxPromptVerifierTests(SharedRepository shared) : IClassFixture<SharedRepository>
{
    private static readonly string Family = Path.Combine(RepositoryPaths.Models, "shapes-t2i");

    [Fact]
    public async Task ScoreAsync_FixtureImagesAndCaptions_EqualTheOnnxFileRunWithTheKnownTokenIds()
    {
        var verifier = shared.Repository.GetVerifier("shapes-t2i-verifier");
        var images = CompositionImages().Take(4).ToArray();
        var captions = TokenIds().Take(4).ToArray();
        var samples = images.SelectMany(i => i).ToArray();

        var scores = await verifier.ScoreAsync(new VerifierBatch(new SampleShape(3, 32, 32), samples, [.. captions.Select(c => c.Text)]));

        var ids = captions.SelectMany(c => c.Ids).Select(i => (long)i).ToArray();
        using var session = new InferenceSession(Path.Combine(Family, "verifier", "model.onnx"));
        using var image = OrtValue.CreateTensorValueFromMemory(samples, [4, 3, 32, 32]);
        using var prompt = OrtValue.CreateTensorValueFromMemory(ids, [4, 16]);
        using var options = new RunOptions();
        using var results = session.Run(options, ["image", "input_ids"], [image, prompt], ["score"]);
        var expected = results[0].GetTensorDataAsSpan<float>().ToArray();
        Assert.Equal(4, scores.Length);
        // The repository's session sets its own thread count, which may change a sum's order: the last bit may differ.
        Assert.All(expected.Zip(scores), p => Assert.True(Math.Abs(p.First - p.Second) <= 1e-5, $"expected {p.First}, got {p.Second}"));
        Assert.Equal(4, scores.Distinct().Count());
    }

    [Fact]
    public async Task ScoreAsync_SameImageOtherCaption_ScoresDiffer()
    {
        var verifier = shared.Repository.GetVerifier("shapes-t2i-verifier");
        var image = CompositionImages().First();

        var scores = await verifier.ScoreAsync(new VerifierBatch(new SampleShape(3, 32, 32), image.Concat(image).ToArray(), ["one red circle", "nine yellow squares"]));

        Assert.NotEqual(scores[0], scores[1]);
    }

    [Fact]
    public async Task ScoreAsync_FixtureScenesThatMissTheirCaption_ScoreWhatTheyShowHigher()
    {
        var verifier = shared.Repository.GetVerifier("shapes-t2i-verifier");
        var misses = CompositionImages().Zip(CompositionCaptions()).Where(c => c.Second.Caption != c.Second.Drawn).ToArray();

        var scores = await verifier.ScoreAsync(new VerifierBatch(
            new SampleShape(3, 32, 32),
            misses.SelectMany(m => m.First.Concat(m.First)).ToArray(),
            [.. misses.SelectMany(m => new[] { m.Second.Drawn, m.Second.Caption })]));

        // A count off by one, a colour, a shape, swapped bindings, a group too many or too few. The verifier is a
        // learned counter, not the judge: it may miscount one scene (today it sees four red circles where three are
        // drawn), but every kind of miss in the other five must rank below what the scene shows.
        var wrong = Enumerable.Range(0, misses.Length).Where(i => scores[2 * i] <= scores[(2 * i) + 1])
            .Select(i => $"'{misses[i].Second.Drawn}' scored {scores[2 * i]} for what it shows, {scores[(2 * i) + 1]} for '{misses[i].Second.Caption}'")
            .ToArray();
        Assert.Equal(6, misses.Length);
        Assert.True(wrong.Length <= 1, string.Join("; ", wrong));
    }

    [Fact]
    public async Task ScoreAsync_WrongShape_IsRefusedNamingTheVerifier()
    {
        var verifier = shared.Repository.GetVerifier("shapes-t2i-verifier");

        var error = await Assert.ThrowsAsync<InvalidRequestException>(() => verifier.ScoreAsync(new VerifierBatch(new SampleShape(1, 24, 24), new float[576], ["one red circle"])));

        Assert.Equal("verifiers", error.Argument);
        Assert.Equal("verifier 'shapes-t2i-verifier' scores samples of shape 3x32x32, got 1x24x24.", error.Message);
    }

    [Fact]
    public void Load_FamilyVerifierWithoutItsTokenizerFolder_FailsAloneNamingTheField()
    {
        using var folder = new FamilyCopy();
        folder.EditVerifier(m => m["tokenizer"] = "../no-such-tokenizer");

        using var repository = ModelRepository.Load(new ModelRepositoryOptions { Path = folder.Root, ExecutionProvider = "cpu", WarmUp = false });

        var entry = repository.Models.Single(m => m.Name == "fam-verifier");
        Assert.Equal("model 'fam-verifier': tokenizer ('../no-such-tokenizer')/vocab.json: missing (CLIP's BPE needs vocab.json and merges.txt)", entry.Error);
        Assert.True(repository.Models.Single(m => m.Name == "fam").IsReady);
    }

    [Fact]
    public void Load_FamilyVerifierWithInt32PromptAndNoTokenizer_NamesBothFields()
    {
        using var folder = new FamilyCopy();
        folder.EditVerifier(m =>
        {
            m["inputs"]!["prompt"]!["dtype"] = "int32";
            m.Remove("tokenizer");
        });

        using var repository = ModelRepository.Load(new ModelRepositoryOptions { Path = folder.Root, ExecutionProvider = "cpu", WarmUp = false });

        var error = repository.Models.Single(m => m.Name == "fam-verifier").Error;
        Assert.Equal("model 'fam-verifier': inputs.prompt.dtype: must be int64, got int32; tokenizer: missing (a verifier with inputs.prompt names the folder of its tokenizer, relative to model.json)", error);
    }

    [Fact]
    public void Load_TokenizerPaddingToAnotherLength_IsRefusedNamingBoth()
    {
        using var folder = new FamilyCopy();
        var config = Path.Combine(folder.Root, "fam", "tokenizer", "tokenizer_config.json");
        var json = JsonNode.Parse(File.ReadAllText(config))!.AsObject();
        json["model_max_length"] = 12;
        File.WriteAllText(config, json.ToJsonString());

        using var repository = ModelRepository.Load(new ModelRepositoryOptions { Path = folder.Root, ExecutionProvider = "cpu", WarmUp = false });

        Assert.Equal(
            "model 'fam-verifier': tokenizer: '../tokenizer' pads to 12 tokens (model_max_length) but inputs.prompt.shape takes 16",
            repository.Models.Single(m => m.Name == "fam-verifier").Error);
    }

    [Fact]
    public void Validate_TokenizerOnAVerifierWithoutPrompt_IsRefused()
    {
        var manifest = JsonSerializer.Deserialize<ModelManifest>(File.ReadAllText(Path.Combine(RepositoryPaths.Models, "count-verifier", "model.json")), ModelManifest.SerializerOptions)! with { Tokenizer = "../tokenizer" };

        Assert.Equal(["tokenizer: only a verifier with inputs.prompt takes a tokenizer"], ManifestValidator.Validate(manifest, "count-verifier"));
    }

    /// <summary>The RGB scenes of the composition judge's fixtures (32 x 32, channel-first, [-1, 1]).</summary>
    internal static IEnumerable<float[]> CompositionImages()
    {
        using var document = JsonDocument.Parse(File.ReadAllText(Path.Combine(RepositoryPaths.Root, "tests", "SearchOrchestrator.Core.Tests", "Verifiers", "Fixtures", "compositions.json")));
        var size = document.RootElement.GetProperty("size").GetInt32();
        var plane = size * size;
        foreach (var c in document.RootElement.GetProperty("cases").EnumerateArray().ToList())
        {
            var rgb = Convert.FromBase64String(c.GetProperty("rgb").GetString()!);
            var image = new float[3 * plane];
            for (var p = 0; p < plane; p++)
            {
                for (var k = 0; k < 3; k++)
                {
                    image[(k * plane) + p] = (rgb[(3 * p) + k] / 127.5f) - 1f;
                }
            }

            yield return image;
        }
    }

    /// <summary>Each fixture scene's caption and what was drawn (they differ where the judge must say no).</summary>
    private static IEnumerable<(string Caption, string Drawn)> CompositionCaptions()
    {
        using var document = JsonDocument.Parse(File.ReadAllText(Path.Combine(RepositoryPaths.Root, "tests", "SearchOrchestrator.Core.Tests", "Verifiers", "Fixtures", "compositions.json")));
        return [.. document.RootElement.GetProperty("cases").EnumerateArray().Select(c => (c.GetProperty("caption").GetString()!, c.GetProperty("drawn").GetString()!))];
    }

    private static IEnumerable<(string Text, int[] Ids)> TokenIds()
    {
        using var document = JsonDocument.Parse(File.ReadAllText(Path.Combine(RepositoryPaths.Root, "tests", "SearchOrchestrator.Onnx.Tests", "Fixtures", "shapes-t2i-token-ids.json")));
        return [.. document.RootElement.GetProperty("captions").EnumerateArray().Select(c => (c.GetProperty("text").GetString()!, c.GetProperty("ids").EnumerateArray().Select(i => i.GetInt32()).ToArray()))];
    }

    /// <summary>A throw-away repository with a copy of the shapes-t2i family named <c>fam</c>.</summary>
    private sealed class FamilyCopy : IDisposable
    {
        public FamilyCopy()
        {
            Root = Directory.CreateTempSubdirectory("searchorch-family-").FullName;
            Copy(Family, Path.Combine(Root, "fam"));
        }

        public string Root { get; }

        public void EditVerifier(Action<JsonObject> edit)
        {
            var path = Path.Combine(Root, "fam", "verifier", "model.json");
            var json = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
            edit(json);
            File.WriteAllText(path, json.ToJsonString());
        }

        public void Dispose() => Directory.Delete(Root, recursive: true);

        private static void Copy(string from, string to)
        {
            Directory.CreateDirectory(to);
            foreach (var file in Directory.EnumerateFiles(from))
            {
                File.Copy(file, Path.Combine(to, Path.GetFileName(file)));
            }

            foreach (var folder in Directory.EnumerateDirectories(from))
            {
                Copy(folder, Path.Combine(to, Path.GetFileName(folder)));
            }
        }
    }
}
