using SearchOrchestrator.Core.Tests.TestDoubles;
using SearchOrchestrator.Processes;
using SearchOrchestrator.Randomness;
using SearchOrchestrator.Scheduling;

namespace SearchOrchestrator.Core.Tests.Scheduling;

public sealed class StepLoopTests
{
    [Fact]
    public async Task RunAsync_ThreeLoopsOnABatcherWithAHugeQueueDelay_StepTogetherWithoutWaitingItOut()
    {
        // Every loop is a producer from before the first starts until it ends: each batch runs as soon as the three
        // steps are in it, never after waiting the 60 s delay for more, and never split.
        var denoiser = new GaussianDataDenoiser(new GaussianData(0.3, 0.7));
        await using var batcher = new DenoiserBatcher(denoiser, new BatchingOptions { MaxQueueDelay = TimeSpan.FromSeconds(60) });
        var process = denoiser.Description.Process;
        var loop = new StepLoop(process.Steps(5), process.CreateSampler(SamplerSettings.Ddim(0)), 2, 1);
        var reached = new int[3];

        await StepLoop.RunAsync([0, 1, 2], batcher, i => loop.AdvanceAsync(new RngKey((ulong)i), new float[8], new float[8], 0, 5, request => batcher.StepAsync(request), (step, _) => reached[i] = step))
            .WaitAsync(TimeSpan.FromSeconds(50));

        Assert.Equal([5, 5, 5], reached);
        Assert.Equal([3, 3, 3, 3, 3], denoiser.BatchSizes);
    }

    [Fact]
    public async Task AdvanceAsync_FromTwoToFive_RunsStepsTwoThreeAndFourInOrder()
    {
        var denoiser = new GaussianDataDenoiser(new GaussianData(0.3, 0.7));
        var process = denoiser.Description.Process;
        var loop = new StepLoop(process.Steps(5), process.CreateSampler(SamplerSettings.Ddim(0)), 2, 1);
        var asked = new List<int>();
        var reached = new List<int>();

        await loop.AdvanceAsync(default, new float[8], new float[8], 2, 5, request => { asked.Add(request.StepIndex); return Task.FromResult(request.StepIndex); }, (step, ran) => reached.Add((step * 10) + ran));

        Assert.Equal([2, 3, 4], asked);
        Assert.Equal([32, 43, 54], reached);
    }
}
