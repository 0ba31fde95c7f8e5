using SearchOrchestrator.Denoising;
using SearchOrchestrator.Onnx.Repository;
using SearchOrchestrator.Onnx.Runtime;
using SearchOrchestrator.Randomness;

namespace SearchOrchestrator.Onnx.Tests.Runtime;

/// <summary>
/// The lone-pass rule runs a pass on a session with more intra-op threads than the instances have; results may not
/// depend on it, so every shipped denoiser must give bit-identical outputs whatever its session's thread count.
/// </summary>
public sealed class IntraOpThreadsTests
{
    [Theory]
    [InlineData("counting")]
    [InlineData("sudoku")]
    public async Task PredictAsync_OneTwoOrFourIntraOpThreads_GiveBitIdenticalOutputs(string model)
    {
        using var models = new TemporaryRepository(model);
        var repositories = new[] { 1, 2, 4 }.Select(threads => ModelRepository.Load(new ModelRepositoryOptions
        {
            Path = models.Path,
            ExecutionProvider = "cpu",
            Instances = 1,
            IntraOpThreads = threads,
            WarmUp = false,
        })).ToList();
        try
        {
            foreach (var rows in new[] { 1, 2, 17, 64 })
            {
                var outputs = new List<float[]>();
                foreach (var repository in repositories)
                {
                    var denoiser = repository.GetDenoiser(model);
                    var output = new float[rows * denoiser.Description.OutputElements];
                    await denoiser.PredictAsync(Batch(denoiser.Description, rows), output);
                    outputs.Add(output);
                }

                Assert.Contains(outputs[0], v => v != 0);
                Assert.Equal(outputs[0], outputs[1]);
                Assert.Equal(outputs[0], outputs[2]);
            }
        }
        finally
        {
            repositories.ForEach(r => r.Dispose());
        }
    }

    private static DenoiserBatch Batch(DenoiserDescription description, int rows)
    {
        var elements = description.SampleShape.ElementCount;
        var samples = new float[rows * elements];
        RngKey.ForSeed((ulong)rows).FillStandardNormal(NoiseUse.Prior, 0, samples);
        if (description.Process is Processes.MaskedProcess masked)
        {
            // Token ids: a mix of masked and given digits.
            for (var i = 0; i < samples.Length; i++)
            {
                samples[i] = Math.Abs((int)(samples[i] * 7)) % masked.VocabularySize;
            }
        }

        var times = Enumerable.Range(0, rows).Select(i => description.Process is Processes.MaskedProcess ? (i + 1f) / (rows + 1) : (float)((i * 37) % 1000)).ToArray();
        var conditions = Enumerable.Range(0, rows).Select(i => (long)(i % 10)).ToArray();
        return new DenoiserBatch(rows, samples, times, conditions);
    }
}
