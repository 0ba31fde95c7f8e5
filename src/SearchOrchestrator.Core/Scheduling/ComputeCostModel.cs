using SearchOrchestrator.Links;

namespace SearchOrchestrator.Scheduling;

/// <summary>
/// The measured compute time of one backend's forward passes as a line in the batch's rows:
/// time = c₀ + c₁·rows, fitted by least squares over recent passes. Thread-safe.
/// </summary>
public sealed class ComputeCostModel
{
    private readonly object _gate = new();
    private readonly Queue<(double Rows, double Seconds)> _samples = new();
    private readonly TimeSpan _fixedPrior;
    private readonly TimeSpan _perRowPrior;
    private (double Fixed, double PerRow) _fit;

    /// <summary>
    /// Creates the model with a prior (used until the backend has been measured): <paramref name="fixedPrior"/>
    /// per pass plus <paramref name="perRowPrior"/> per row.
    /// </summary>
    public ComputeCostModel(TimeSpan fixedPrior, TimeSpan perRowPrior)
    {
        _fixedPrior = fixedPrior;
        _perRowPrior = perRowPrior;
        _fit = (fixedPrior.TotalSeconds, perRowPrior.TotalSeconds);
    }

    /// <summary>Passes measured so far (at most <see cref="LinkCostModel.Window"/> kept).</summary>
    public int Samples
    {
        get
        {
            lock (_gate)
            {
                return _samples.Count;
            }
        }
    }

    /// <summary>Predicted time of one pass of <paramref name="rows"/> rows.</summary>
    public TimeSpan Predict(int rows)
    {
        lock (_gate)
        {
            return TimeSpan.FromSeconds(Math.Max(0, _fit.Fixed + (_fit.PerRow * rows)));
        }
    }

    /// <summary>Records one measured pass and refits.</summary>
    public void Record(int rows, TimeSpan compute)
    {
        lock (_gate)
        {
            _samples.Enqueue((rows, compute.TotalSeconds));
            while (_samples.Count > LinkCostModel.Window)
            {
                _samples.Dequeue();
            }

            var fit = LinkFit.LeastSquares(_samples);
            // One distinct batch size says nothing about the slope: keep the prior's split of the measured time.
            var distinct = _samples.Select(s => s.Rows).Distinct().Count();
            if (distinct < 2)
            {
                var mean = _samples.Average(s => s.Seconds);
                var rowsMean = _samples.Average(s => s.Rows);
                var priorTotal = _fixedPrior.TotalSeconds + (_perRowPrior.TotalSeconds * rowsMean);
                var scale = priorTotal > 0 ? mean / priorTotal : 1;
                _fit = (_fixedPrior.TotalSeconds * scale, _perRowPrior.TotalSeconds * scale);
            }
            else
            {
                _fit = (fit.Latency.TotalSeconds, fit.SecondsPerByte);
            }
        }
    }
}
