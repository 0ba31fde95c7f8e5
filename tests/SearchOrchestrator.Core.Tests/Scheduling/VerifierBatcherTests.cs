using SearchOrchestrator.Links;
using SearchOrchestrator.Scheduling;
using SearchOrchestrator.Tensors;
using SearchOrchestrator.Verifiers;

namespace SearchOrchestrator.Core.Tests.Scheduling;

public sealed class VerifierBatcherTests
{
    private static readonly SampleShape Shape = new(2);

    [Fact]
    public async Task ScoreAsync_RemoteVerifierBatchOfThree_SplitsTheCallsTransferSoTheSharesAddUpExactly()
    {
        var verifier = new RecordingRemoteVerifier(new Transfer(10, 7, TimeSpan.FromTicks(5)));
        await using var batcher = new VerifierBatcher(verifier, new BatchingOptions { MaxBatchSize = 3, MaxQueueDelay = TimeSpan.FromHours(1) });

        var results = await Task.WhenAll(Enumerable.Range(0, 3).Select(i => batcher.ScoreAsync(Shape, [i, 0], "c", time: 100 + i)));

        Assert.Equal([new Transfer(4, 3, TimeSpan.FromTicks(2)), new Transfer(3, 2, TimeSpan.FromTicks(2)), new Transfer(3, 2, TimeSpan.FromTicks(1))], results.Select(r => r.Transfer));
        Assert.Equal([0f, 1f, 2f], results.Select(r => r.Score));
        Assert.Equal([100f, 101f, 102f], Assert.Single(verifier.Times));
        Assert.Equal((VerifierKinds.Worker, "remote"), (batcher.Kind, batcher.Name));
    }

    [Fact]
    public async Task ScoreAsync_SomeSamplesWithoutATime_SendsNoTimes()
    {
        var verifier = new RecordingRemoteVerifier(default);
        await using var batcher = new VerifierBatcher(verifier, new BatchingOptions { MaxBatchSize = 2, MaxQueueDelay = TimeSpan.FromHours(1) });

        await Task.WhenAll(batcher.ScoreAsync(Shape, [0, 0], "c", time: 5), batcher.ScoreAsync(Shape, [1, 0], "c"));

        Assert.Empty(Assert.Single(verifier.Times));
    }

    /// <summary>Scores each sample with its first value; every call moves <paramref name="transfer"/>.</summary>
    private sealed class RecordingRemoteVerifier(Transfer transfer) : IRemoteVerifier
    {
        public List<float[]> Times { get; } = [];

        public string Name => "remote";

        public string Kind => VerifierKinds.Worker;

        public IReadOnlyList<LinkCostModel> Links => [];

        public async Task<float[]> ScoreAsync(VerifierBatch batch, CancellationToken cancellationToken = default) =>
            (await ScoreRemotelyAsync(batch, cancellationToken)).Scores;

        public Task<(float[] Scores, Transfer Transfer)> ScoreRemotelyAsync(VerifierBatch batch, CancellationToken cancellationToken = default)
        {
            lock (Times)
            {
                Times.Add(batch.Times.ToArray());
            }

            float[] scores = [.. Enumerable.Range(0, batch.Count).Select(i => batch.Sample(i)[0])];
            return Task.FromResult((scores, transfer));
        }
    }
}
