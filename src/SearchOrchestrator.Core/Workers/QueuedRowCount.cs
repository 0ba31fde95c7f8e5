namespace SearchOrchestrator.Workers;

/// <summary>
/// The rows queued or running on one backend (<see cref="IStepBackend.QueuedRows"/>, which placement reads), counted the
/// same way by every kind: a call adds its rows while it is queued or running and takes them off when it ends, however
/// it ends. Thread-safe.
/// </summary>
public sealed class QueuedRowCount
{
    private int _rows;

    /// <summary>Rows queued or running now.</summary>
    public int Rows => Volatile.Read(ref _rows);

    /// <summary>Counts <paramref name="rows"/> until the returned scope is disposed.</summary>
    public Scope Add(int rows)
    {
        Interlocked.Add(ref _rows, rows);
        return new Scope(this, rows);
    }

    /// <summary>The rows of one call, counted until disposed.</summary>
    public readonly struct Scope : IDisposable
    {
        private readonly QueuedRowCount _count;
        private readonly int _rows;

        internal Scope(QueuedRowCount count, int rows)
        {
            _count = count;
            _rows = rows;
        }

        /// <summary>Takes the call's rows off the count.</summary>
        public void Dispose() => Interlocked.Add(ref _count._rows, -_rows);
    }
}
