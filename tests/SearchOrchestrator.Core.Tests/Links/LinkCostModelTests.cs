using SearchOrchestrator.Links;
using SearchOrchestrator.Scheduling;
using SearchOrchestrator.Workers;

namespace SearchOrchestrator.Core.Tests.Links;

public sealed class LinkCostModelTests
{
    [Fact]
    public void Record_PointsOnALine_FitsAlphaBetaExactly()
    {
        var link = new LinkCostModel("w");
        foreach (var bytes in new[] { 0L, 1000, 5000, 20000 })
        {
            link.Record(new Transfer(bytes / 2, bytes - (bytes / 2), TimeSpan.FromSeconds(0.002 + (bytes * 1e-7))));
        }

        var fit = link.Fit;

        Assert.Equal(0.002, fit.Latency.TotalSeconds, 9);
        Assert.Equal(1e7, fit.BytesPerSecond, 3);
        Assert.Equal(1, fit.RSquared, 9);
        Assert.Equal((13000L, 13000L, 4L), (link.Usage.BytesSent, link.Usage.BytesReceived, link.Usage.Calls));
    }

    [Fact]
    public void Record_ASlowOutlierOfARepeatedSize_DoesNotMoveTheFit()
    {
        var link = new LinkCostModel("w");
        link.Record(new Transfer(0, 0, TimeSpan.FromMilliseconds(1)));
        link.Record(new Transfer(1_000_000, 0, TimeSpan.FromMilliseconds(11)));
        var before = link.Fit;

        link.Record(new Transfer(1_000_000, 0, TimeSpan.FromMilliseconds(500))); // a stall on a busy machine

        Assert.Equal(before.Latency, link.Fit.Latency);
        Assert.Equal(before.SecondsPerByte, link.Fit.SecondsPerByte, 15);
    }

    [Fact]
    public void LeastSquares_OneSize_TakesTheSlopeAsZero()
    {
        var fit = LinkFit.LeastSquares([(100, 0.5), (100, 0.5)]);

        Assert.Equal(0.5, fit.Latency.TotalSeconds, 9);
        Assert.Equal(0, fit.SecondsPerByte);
        Assert.True(double.IsPositiveInfinity(fit.BytesPerSecond));
    }

    [Fact]
    public void ComputeCostModel_TwoBatchSizes_FitsFixedAndPerRowTime()
    {
        var compute = new ComputeCostModel(TimeSpan.FromMilliseconds(5), TimeSpan.FromMilliseconds(5));
        compute.Record(1, TimeSpan.FromMilliseconds(3));
        compute.Record(9, TimeSpan.FromMilliseconds(11));

        Assert.Equal(2, compute.Predict(0).TotalMilliseconds, 3);
        Assert.Equal(66, compute.Predict(64).TotalMilliseconds, 3);
    }
}
