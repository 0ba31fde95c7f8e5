using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.ML.OnnxRuntime;
using SearchOrchestrator.Denoising;
using SearchOrchestrator.Onnx.Repository;
using SearchOrchestrator.Onnx.Runtime;
using SearchOrchestrator.Onnx.Text;
using SearchOrchestrator.Processes;
using SearchOrchestrator.Scheduling;
using SearchOrchestrator.Search;
using SearchOrchestrator.Strategies;
using SearchOrchestrator.Tests;
using SearchOrchestrator.Verifiers;

namespace SearchOrchestrator.Onnx.Tests.Text;

/// <summary>The tiny diffusion LLMs of <c>models/training/make_tiny_text_models.py</c>, loaded from their Hugging Face export folders.</summary>
public sealed class TextModelTests(TextModelTests.Repository shared) : IClassFixture<TextModelTests.Repository>
{
    /// <summary>The fixtures' folder: tiny-llada (attention_mask, dynamic length) and tiny-dream (ids only, shifted logits).</summary>
    public static readonly string Fixtures = Path.Combine(RepositoryPaths.Root, "tests", "SearchOrchestrator.Onnx.Tests", "Fixtures", "text");

    [Fact]
    public void Load_TinyTextModels_AreMaskedDenoisersWithTheirConfigsLayout()
    {
        var llada = Assert.IsType<MaskedProcess>(shared.Models.GetDenoiser("tiny-llada").Description.Process);
        var dream = Assert.IsType<MaskedProcess>(shared.Models.GetDenoiser("tiny-dream").Description.Process);

        Assert.All(shared.Models.Models, m => Assert.True(m.IsReady, m.Error));
        Assert.Equal((24, 302, 301, 8, 300), (llada.SequenceLength, llada.VocabularySize, llada.MaskId, llada.Text!.AnswerLength, llada.Text.PadId));
        Assert.Equal((20, 302, 301, (int?)null, 300), (dream.SequenceLength, dream.VocabularySize, dream.MaskId, dream.Text!.AnswerLength, dream.Text.PadId));
        var manifest = shared.Models.Models.Single(m => m.Name == "tiny-llada").Manifest!;
        Assert.Equal(("denoiser", "masked", "logits", 301), (manifest.Kind, manifest.Process, manifest.Prediction, manifest.Tokens!.MaskId));
        Assert.Equal([-1, 24, 302], manifest.Outputs!["prediction"].Shape!);
    }

    public static TheoryData<int> Texts() => [0, 1, 2, 3];

    [Theory]
    [MemberData(nameof(Texts))]
    public void Encode_FixtureTexts_GivesTheReferenceBpeIds(int index)
    {
        using var document = JsonDocument.Parse(File.ReadAllText(Path.Combine(Fixtures, "token-ids.json")));
        var entry = document.RootElement.GetProperty("texts")[index];
        var text = entry.GetProperty("text").GetString()!;
        var tokenizer = HuggingFaceTokenizer.Load(Path.Combine(Fixtures, "tiny-llada", "tokenizer.json"));

        var ids = tokenizer.Encode(text);

        Assert.Equal(entry.GetProperty("ids").EnumerateArray().Select(i => i.GetInt32()), ids);
        Assert.Equal(text.Replace("<|mdm_mask|>", string.Empty, StringComparison.Ordinal), tokenizer.Decode(ids));
    }

    [Fact]
    public void TextPrompt_PromptThenAnswerThenPadding_ClampsAllButTheAnswer()
    {
        var llada = (MaskedProcess)shared.Models.GetDenoiser("tiny-llada").Description.Process;

        var prompt = llada.TextPrompt("the cat sat on the mat", "prompt");

        Assert.Equal([299, 277, 268, 267, 259, 282, .. Enumerable.Repeat(301, 8), .. Enumerable.Repeat(300, 10)], prompt.Tokens);
        var (_, clamped) = llada.Resolve(prompt);
        Assert.Equal(Enumerable.Range(0, 24).Select(p => p is < 6 or >= 14), clamped);
    }

    [Fact]
    public void TextPrompt_LongerThanTheSequenceLeaves_IsRefusedNamingThePrompt()
    {
        var llada = (MaskedProcess)shared.Models.GetDenoiser("tiny-llada").Description.Process;

        var error = Assert.Throws<InvalidRequestException>(() => llada.TextPrompt("the cat sat on the mat the cat sat on the mat the cat sat on the mat", "prompt"));

        Assert.Equal("prompt", error.Argument);
        Assert.Equal("the prompt is 18 tokens, which leaves no room for an answer of 8 in the model's sequence of 24; shorten it to at most 16 tokens.", error.Message);
    }

    [Theory]
    [InlineData("tiny-llada", false)]
    [InlineData("tiny-dream", true)]
    public async Task PredictAsync_TwoSequences_EqualsTheOnnxFileRunDirectly(string model, bool shifted)
    {
        var denoiser = shared.Models.GetDenoiser(model);
        var length = denoiser.Description.SampleShape.ElementCount;
        var ids = Enumerable.Range(0, 2 * length).Select(i => (long)((i * 37) % 302)).ToArray();
        var output = new float[2 * length * 302];

        await denoiser.PredictAsync(new DenoiserBatch(2, ids.Select(i => (float)i).ToArray(), new float[2], new long[2]), output);

        using var session = new InferenceSession(Path.Combine(Fixtures, model, "model.onnx"));
        using var inputIds = OrtValue.CreateTensorValueFromMemory(ids, [2, length]);
        using var mask = OrtValue.CreateTensorValueFromMemory(Enumerable.Repeat(1L, 2 * length).ToArray(), [2, length]);
        using var options = new RunOptions();
        using var results = shifted
            ? session.Run(options, ["input_ids"], [inputIds], ["logits"])
            : session.Run(options, ["input_ids", "attention_mask"], [inputIds, mask], ["logits"]);
        var direct = results[0].GetTensorDataAsSpan<float>().ToArray();
        for (var b = 0; b < 2; b++)
        {
            for (var p = 0; p < length; p++)
            {
                // Dream's logits at position p - 1 predict token p; position 0 keeps its own.
                var from = shifted ? Math.Max(p - 1, 0) : p;
                for (var v = 0; v < 302; v += 29)
                {
                    Assert.True(Math.Abs(direct[(((b * length) + from) * 302) + v] - output[(((b * length) + p) * 302) + v]) <= 1e-5, $"row {b} position {p} token {v}");
                }
            }
        }
    }

    public static TheoryData<string, string> StrategiesAndModels()
    {
        var data = new TheoryData<string, string>();
        foreach (var name in StrategyNames.All)
        {
            data.Add(name, "tiny-llada");
            data.Add(name, "tiny-dream");
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(StrategiesAndModels))]
    public async Task RunAsync_EveryStrategy_FillsTheAnswerAndIsTheSameAcrossBatching(string name, string model)
    {
        var catalog = new ModelCatalog(shared.Models, [new TokenSpread()]);
        var parameters = name == StrategyNames.SharedPrefix ? new Dictionary<string, string> { ["fork_at"] = "4" } : [];
        var request = new SearchRequest
        {
            Model = model,
            TextPrompt = "the cat sat",
            Steps = 16,
            Seed = 3,
            Sampler = MaskedProcess.DefaultSettings.With(SamplerParameters.Temperature, 0.8),
            Strategy = StrategyCatalog.BuiltIn.Create(name, parameters, 16),
            Verifiers = [TokenSpread.VerifierName],
            Candidates = 2,
        };
        SearchResult small, large;
        await using (var engine = new SearchEngine(catalog, new BatchingOptions { MaxBatchSize = 2 }))
        {
            small = await engine.RunAsync(request);
        }

        await using (var engine = new SearchEngine(catalog, new BatchingOptions { MaxBatchSize = 64 }))
        {
            large = await engine.RunAsync(request);
        }

        var process = (MaskedProcess)shared.Models.GetDenoiser(model).Description.Process;
        Assert.Equal(small.Candidates.Select(c => c.Sample), large.Candidates.Select(c => c.Sample));
        Assert.Equal(small.Cost.Nfe, large.Cost.Nfe);
        var best = small.Candidates[0];
        Assert.True(best.Complete);
        Assert.Equal([299, 277, 268], best.Sample[..3].Select(v => (int)v));
        Assert.DoesNotContain(process.MaskId, best.Sample.Select(v => (int)v));
        Assert.NotNull(process.Decode(best.Sample, request.TextPrompt));
    }

    [Fact]
    public async Task RunAsync_AnswerLength_MasksThatManyTokensAfterThePromptAndPadsTheRest()
    {
        await using var engine = new SearchEngine(new ModelCatalog(shared.Models, []));
        var request = new SearchRequest { Model = "tiny-llada", TextPrompt = "the cat sat", AnswerLength = 4, Steps = 4, Seed = 3, Strategy = new BestOfNStrategy(1) };

        var sample = (await engine.RunAsync(request)).Candidates[0].Sample.Select(v => (int)v).ToList();

        Assert.Equal([299, 277, 268], sample[..3]);
        Assert.DoesNotContain(301, sample[3..7]); // the four answer positions are filled
        Assert.Equal(Enumerable.Repeat(300, 24 - 3 - 4), sample[7..]); // the rest is padding, as with the default of 8
    }

    [Theory]
    [InlineData("tiny-llada", 0, "answer_length must lie in 1 .. 21 (the model's sequence of 24 less the prompt's 3 tokens), got 0.")]
    [InlineData("tiny-llada", 22, "answer_length must lie in 1 .. 21 (the model's sequence of 24 less the prompt's 3 tokens), got 22.")]
    public async Task Validate_AnswerLengthOutOfRange_IsRefusedNamingTheField(string model, int answer, string message)
    {
        await using var engine = new SearchEngine(new ModelCatalog(shared.Models, []));

        var error = Assert.Throws<InvalidRequestException>(() => engine.Validate(new SearchRequest { Model = model, TextPrompt = "the cat sat", AnswerLength = answer, Steps = 4, Strategy = new BestOfNStrategy(1) }));

        Assert.Equal(("answer_length", message), (error.Argument, error.Message));
    }

    [Fact]
    public async Task RunAsync_TextModel_VerifiersReceiveTheDecodedAnswers()
    {
        var verifier = new TextLength();
        await using var engine = new SearchEngine(new ModelCatalog(shared.Models, [verifier]));
        var request = new SearchRequest { Model = "tiny-llada", TextPrompt = "the cat sat", AnswerLength = 4, Steps = 4, Seed = 3, Sampler = MaskedProcess.DefaultSettings.With(SamplerParameters.Temperature, 0.8), Strategy = new BestOfNStrategy(3), Verifiers = [TextLength.VerifierName], Candidates = 3 };

        var result = await engine.RunAsync(request);

        var process = (MaskedProcess)shared.Models.GetDenoiser("tiny-llada").Description.Process;
        var answers = result.Candidates.Select(c => process.Decode(c.Sample, request.TextPrompt, 4)!).ToList();
        Assert.Equal(3, answers.Count);
        Assert.Equal(answers.Order(), verifier.Seen.Order());
        Assert.Equal(answers.Select(a => (float)a.Length), result.Candidates.Select(c => c.Scores[TextLength.VerifierName]));
    }

    /// <summary>A C# verifier of text: the answer's length in characters; records the texts it was given.</summary>
    private sealed class TextLength : IVerifier
    {
        public const string VerifierName = "text-length";

        public string Name => VerifierName;

        public List<string> Seen { get; } = [];

        public Task<float[]> ScoreAsync(VerifierBatch batch, CancellationToken cancellationToken = default)
        {
            var texts = batch.Texts ?? throw new InvalidOperationException("no texts");
            lock (Seen)
            {
                Seen.AddRange(texts);
            }

            return Task.FromResult(texts.Select(t => (float)t.Length).ToArray());
        }
    }

    /// <summary>A C# verifier of token samples: how many distinct tokens the sample holds (more is better).</summary>
    private sealed class TokenSpread : IVerifier
    {
        public const string VerifierName = "token-spread";

        public string Name => VerifierName;

        public Task<float[]> ScoreAsync(VerifierBatch batch, CancellationToken cancellationToken = default) =>
            Task.FromResult(Enumerable.Range(0, batch.Count).Select(i => (float)batch.Sample(i).ToArray().Distinct().Count()).ToArray());
    }

    [Fact]
    public void Load_BrokenTextModelFolders_AreRefusedNamingFileAndField()
    {
        var root = Directory.CreateTempSubdirectory("searchorch-text-").FullName;
        try
        {
            Copy("tiny-llada", root, "no-mask", config => config.Remove("mask_token_id"));
            Copy("tiny-llada", root, "unigram", tokenizer: t => t["model"]!["type"] = "Unigram");
            Copy("tiny-llada", root, "no-length", generation: g => g.Remove("max_length"));
            Copy("tiny-dream", root, "wrong-vocab", config => config["vocab_size"] = 300);
            File.Delete(Path.Combine(Copy("tiny-dream", root, "no-tokenizer"), "tokenizer.json"));

            using var repository = ModelRepository.Load(new ModelRepositoryOptions { Path = root, ExecutionProvider = "cpu", WarmUp = false });

            string Error(string name) => repository.Models.Single(m => m.Name == name).Error!;
            Assert.Equal("model 'no-mask': config.json: mask_token_id: missing, and generation_config.json has none (the mask token's id: LLaDA's config.json and Dream's generation_config.json give it)", Error("no-mask"));
            Assert.Equal("model 'unigram': tokenizer.json: model.type: 'Unigram' is not supported; this reader takes BPE models (LLaDA's, Dream's, GPT-2's)", Error("unigram"));
            Assert.Equal("model 'no-length': generation_config.json: max_length: missing, and model.onnx's input_ids leaves the sequence length dynamic (give the length searches run at)", Error("no-length"));
            Assert.Equal("model 'wrong-vocab': config.json: vocab_size: 300, but model.onnx: logits axis 2 is 302 (the vocabulary size must agree)", Error("wrong-vocab"));
            Assert.Equal("model 'no-tokenizer': tokenizer.json: missing (a text model's Hugging Face tokenizer)", Error("no-tokenizer"));
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    private static string Copy(string model, string root, string name, Action<JsonObject>? config = null, Action<JsonObject>? generation = null, Action<JsonObject>? tokenizer = null)
    {
        var target = Directory.CreateDirectory(Path.Combine(root, name)).FullName;
        foreach (var file in Directory.EnumerateFiles(Path.Combine(Fixtures, model)))
        {
            File.Copy(file, Path.Combine(target, Path.GetFileName(file)));
        }

        foreach (var (file, edit) in new[] { ("config.json", config), ("generation_config.json", generation), ("tokenizer.json", tokenizer) })
        {
            if (edit is not null)
            {
                var json = JsonNode.Parse(File.ReadAllText(Path.Combine(target, file)))!.AsObject();
                edit(json);
                File.WriteAllText(Path.Combine(target, file), json.ToJsonString());
            }
        }

        return target;
    }

    /// <summary>The fixtures' repository, loaded once.</summary>
    public sealed class Repository : IDisposable
    {
        public ModelRepository Models { get; } = ModelRepository.Load(new ModelRepositoryOptions { Path = Fixtures, ExecutionProvider = "cpu" });

        public void Dispose() => Models.Dispose();
    }
}
