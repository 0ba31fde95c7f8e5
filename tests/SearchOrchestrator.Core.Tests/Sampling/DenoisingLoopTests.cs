using SearchOrchestrator.Core.Tests.TestDoubles;
using SearchOrchestrator.Sampling;

namespace SearchOrchestrator.Core.Tests.Sampling;

public sealed class DenoisingLoopTests
{
    private static SamplingRequest Request(int samples, int maxBatch = 64, double guidance = 1.0, double eta = 0.5, ulong seed = 9) => new()
    {
        Conditions = Enumerable.Range(0, samples).Select(i => i % 2 == 0 ? "1" : "2").ToArray(),
        Steps = 10,
        Guidance = guidance,
        Eta = eta,
        Seed = seed,
        MaxBatchSize = maxBatch,
    };

    [Fact]
    public async Task RunAsync_SameRequest_GivesIdenticalSamples()
    {
        var first = await DenoisingLoop.RunAsync(new GaussianDataDenoiser(new(0, 1)), Request(5));
        var second = await DenoisingLoop.RunAsync(new GaussianDataDenoiser(new(0, 1)), Request(5));

        Assert.Equal(first.Samples, second.Samples);
    }

    [Fact]
    public async Task RunAsync_DifferentBatchLimits_GiveIdenticalSamples()
    {
        var oneBatch = await DenoisingLoop.RunAsync(new GaussianDataDenoiser(new(0, 1)), Request(7, maxBatch: 64, guidance: 2));
        var smallBatches = await DenoisingLoop.RunAsync(new GaussianDataDenoiser(new(0, 1)), Request(7, maxBatch: 4, guidance: 2));

        Assert.Equal(oneBatch.Samples, smallBatches.Samples);
    }

    [Fact]
    public async Task RunAsync_SampleAlone_EqualsSameSampleInALargerRequest()
    {
        var denoiser = new GaussianDataDenoiser(new(0, 1));
        var alone = await DenoisingLoop.RunAsync(denoiser, Request(1));
        var among = await DenoisingLoop.RunAsync(denoiser, Request(6));

        Assert.Equal(alone.Sample(0).ToArray(), among.Sample(0).ToArray());
        Assert.NotEqual(among.Sample(0).ToArray(), among.Sample(2).ToArray());
    }

    [Fact]
    public async Task RunAsync_Guided_CountsOneNfePerSamplePerStepAndDoublesTheBatch()
    {
        var denoiser = new GaussianDataDenoiser(new(0, 1));

        var result = await DenoisingLoop.RunAsync(denoiser, Request(6, maxBatch: 8, guidance: 3));

        Assert.Equal(60, result.Nfe);
        // Four samples (eight guided rows) per pass, then two: 2 chunks × 10 steps.
        Assert.Equal(20, result.ForwardPasses);
        Assert.Equal(20, denoiser.Passes);
        Assert.Equal(10, denoiser.BatchSizes.Count(b => b == 8));
        Assert.Equal(10, denoiser.BatchSizes.Count(b => b == 4));
    }

    [Fact]
    public async Task RunAsync_ConditionsShiftTheMean_TowardTheirOwnData()
    {
        var denoiser = new GaussianDataDenoiser(new(0, 0.1), elements: 512);
        var request = Request(2, eta: 0) with { Steps = 50 };

        var result = await DenoisingLoop.RunAsync(denoiser, request);

        // Condition "1" has id 2 (mean 1.0), "2" has id 4 (mean 2.0).
        Assert.InRange(GaussianData.Moments(result.Sample(0).Span).Mean, 0.95, 1.05);
        Assert.InRange(GaussianData.Moments(result.Sample(1).Span).Mean, 1.95, 2.05);
    }

    [Fact]
    public async Task RunAsync_GuidanceOnModelWithoutNullCondition_ThrowsBeforeAnyPass()
    {
        var denoiser = new GaussianDataDenoiser(new(0, 1), withNullCondition: false);

        var ex = await Assert.ThrowsAsync<InvalidRequestException>(() => DenoisingLoop.RunAsync(denoiser, Request(2, guidance: 2)));

        Assert.Equal("guidance", ex.Argument);
        Assert.Equal(0, denoiser.Passes);
    }

    [Theory]
    [InlineData("7", "condition")]
    [InlineData(null, "steps")]
    public async Task RunAsync_InvalidRequest_ThrowsNamingTheArgumentBeforeAnyPass(string? condition, string argument)
    {
        var denoiser = new GaussianDataDenoiser(new(0, 1));
        var request = condition is null ? Request(1) with { Steps = 0 } : Request(1) with { Conditions = [condition] };

        var ex = await Assert.ThrowsAsync<InvalidRequestException>(() => DenoisingLoop.RunAsync(denoiser, request));

        Assert.Equal(argument, ex.Argument);
        Assert.Equal(0, denoiser.Passes);
    }

    [Fact]
    public async Task RunAsync_Cancelled_StopsWithOperationCanceled()
    {
        using var cancellation = new CancellationTokenSource();
        await cancellation.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => DenoisingLoop.RunAsync(new GaussianDataDenoiser(new(0, 1)), Request(2), cancellationToken: cancellation.Token));
    }
}
