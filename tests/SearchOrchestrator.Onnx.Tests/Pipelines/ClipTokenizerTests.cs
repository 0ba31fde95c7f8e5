using System.Text.Json;
using SearchOrchestrator.Onnx.Pipelines;
using SearchOrchestrator.Tests;

namespace SearchOrchestrator.Onnx.Tests.Pipelines;

/// <summary>
/// The CLIP tokenizer against the Python one the shapes-t2i family was trained with (models/training/clip_bpe.py):
/// Fixtures/shapes-t2i-token-ids.json holds its ids for generated captions, the empty prompt, odd spacing and case,
/// and a caption longer than the 16 tokens (written by /usr/bin/python3 with clip_bpe.Tokenizer.encode).
/// </summary>
public sealed class ClipTokenizerTests
{
    private static readonly string Folder = Path.Combine(RepositoryPaths.Models, "shapes-t2i", "tokenizer");

    public static TheoryData<string, int[]> PythonIds()
    {
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(RepositoryPaths.Root, "tests", "SearchOrchestrator.Onnx.Tests", "Fixtures", "shapes-t2i-token-ids.json")));
        var data = new TheoryData<string, int[]>();
        foreach (var caption in json.RootElement.GetProperty("captions").EnumerateArray())
        {
            data.Add(caption.GetProperty("text").GetString()!, [.. caption.GetProperty("ids").EnumerateArray().Select(i => i.GetInt32())]);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(PythonIds))]
    public void Encode_ShapesT2iCaption_MatchesThePythonTokenizer(string caption, int[] expected)
    {
        var tokenizer = ClipTokenizer.Load(Folder);

        Assert.Equal(expected, tokenizer.Encode(caption));
    }

    [Fact]
    public void Load_ShapesT2i_ReadsLengthAndSpecialTokensFromTheConfig()
    {
        var tokenizer = ClipTokenizer.Load(Folder);

        Assert.Equal((16, 572, 573, 573, 574), (tokenizer.MaxLength, tokenizer.BosId, tokenizer.EosId, tokenizer.PadId, tokenizer.VocabularySize));
    }

    [Fact]
    public void Encode_NonAsciiWord_IsOneByteLevelWordAsInClip()
    {
        var tokenizer = ClipTokenizer.Load(Folder);

        // "é" is the bytes C3 A9, GPT-2's byte symbols 'Ã' (127) and '©' (102); CLIP keeps "héllo" one word, so only
        // its last symbol carries the end-of-word suffix.
        Assert.Equal([572, 71, 127, 102, 75, 75, 334, 573], tokenizer.Encode("héllo")[..8]);
    }

    [Fact]
    public void Load_MissingMerges_NamesTheFile()
    {
        var folder = Directory.CreateTempSubdirectory("searchorch-tokenizer-").FullName;
        try
        {
            File.Copy(Path.Combine(Folder, "vocab.json"), Path.Combine(folder, "vocab.json"));

            var ex = Assert.Throws<PipelineLayoutException>(() => ClipTokenizer.Load(folder));

            Assert.Equal("tokenizer/merges.txt: missing (CLIP's BPE needs vocab.json and merges.txt)", ex.Message);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public void Load_PadTokenNotInVocabulary_NamesTheField()
    {
        var folder = Directory.CreateTempSubdirectory("searchorch-tokenizer-").FullName;
        try
        {
            foreach (var file in Directory.GetFiles(Folder))
            {
                File.Copy(file, Path.Combine(folder, Path.GetFileName(file)));
            }

            File.WriteAllText(Path.Combine(folder, "tokenizer_config.json"), """{"model_max_length": 16, "pad_token": {"content": "<pad>"}}""");

            var ex = Assert.Throws<PipelineLayoutException>(() => ClipTokenizer.Load(folder));

            Assert.Equal("tokenizer/tokenizer_config.json: pad_token: '<pad>' is not in vocab.json", ex.Message);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }
}
