namespace SearchOrchestrator.Scheduling;

/// <summary>
/// The prompt embeddings of one pipeline, shared by every search: each distinct prompt is encoded once (through the
/// text encoder's batcher) and kept, up to a bound, for the requests that follow. Entries are handed out as integer
/// handles, which are the condition ids of the denoiser's step path (<see cref="EmbeddingDenoiser"/> looks them up), and
/// are leased while a search uses them: a leased entry is never evicted; past the bound, the least recently leased
/// unleased entries go.
/// </summary>
internal sealed class PromptEmbeddingCache
{
    private readonly TextEncoderBatcher _encoder;
    private readonly int _capacity;
    private readonly Dictionary<string, Entry> _byPrompt = new(StringComparer.Ordinal);
    private readonly Dictionary<long, Entry> _byHandle = [];
    private readonly object _gate = new();
    private long _nextHandle;
    private long _clock;

    /// <summary>Creates the cache over <paramref name="encoder"/>, keeping at most <paramref name="capacity"/> unleased prompts.</summary>
    public PromptEmbeddingCache(TextEncoderBatcher encoder, int capacity)
    {
        ArgumentNullException.ThrowIfNull(encoder);
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        _encoder = encoder;
        _capacity = capacity;
    }

    /// <summary>Prompts held now (leased or not).</summary>
    public int Count
    {
        get
        {
            lock (_gate)
            {
                return _byPrompt.Count;
            }
        }
    }

    /// <summary>
    /// Leases an entry for each prompt (in order; a prompt given twice is leased twice) without encoding anything yet;
    /// <see cref="PromptLease.EncodeAsync"/> encodes what is missing. Dispose the lease when the search is over.
    /// </summary>
    public PromptLease Lease(IReadOnlyList<string> prompts)
    {
        ArgumentNullException.ThrowIfNull(prompts);
        lock (_gate)
        {
            var entries = new Entry[prompts.Count];
            for (var i = 0; i < prompts.Count; i++)
            {
                if (!_byPrompt.TryGetValue(prompts[i], out var entry))
                {
                    entry = new Entry(prompts[i], _nextHandle++);
                    _byPrompt[entry.Prompt] = entry;
                    _byHandle[entry.Handle] = entry;
                }

                entry.Leases++;
                entry.LastUsed = ++_clock;
                entries[i] = entry;
            }

            Evict();
            return new PromptLease(this, entries);
        }
    }

    /// <summary>How many distinct prompts of <paramref name="prompts"/> a search would have encoded now: those neither encoded nor being encoded.</summary>
    public int CountUnencoded(IEnumerable<string> prompts)
    {
        ArgumentNullException.ThrowIfNull(prompts);
        lock (_gate)
        {
            return prompts.Distinct(StringComparer.Ordinal).Count(p => !_byPrompt.TryGetValue(p, out var entry) || entry.Encoding is null or { IsFaulted: true } or { IsCanceled: true });
        }
    }

    /// <summary>The embedding behind <paramref name="handle"/>; its lease must be held and encoded.</summary>
    internal float[] Embedding(long handle)
    {
        lock (_gate)
        {
            return _byHandle.TryGetValue(handle, out var entry) && entry.Encoding is { IsCompletedSuccessfully: true } encoding
                ? encoding.Result
                : throw new InvalidOperationException($"Prompt handle {handle} is not leased and encoded.");
        }
    }

    /// <summary>Starts encoding whatever of <paramref name="entries"/> nobody has started; returns the encodings and how many this call started.</summary>
    private (Task<float[]>[] Encodings, int Started) Start(Entry[] entries)
    {
        lock (_gate)
        {
            var started = 0;
            var encodings = new Task<float[]>[entries.Length];
            for (var i = 0; i < entries.Length; i++)
            {
                var entry = entries[i];
                if (entry.Encoding is null || entry.Encoding.IsFaulted || entry.Encoding.IsCanceled)
                {
                    // Uncancellable: other searches may wait on the same entry; a cancelled search only stops waiting.
                    entry.Encoding = _encoder.EncodeAsync(entry.Prompt, CancellationToken.None);
                    started++;
                }

                encodings[i] = entry.Encoding;
            }

            return (encodings, started);
        }
    }

    private void Release(Entry[] entries)
    {
        lock (_gate)
        {
            foreach (var entry in entries)
            {
                entry.Leases--;
            }

            Evict();
        }
    }

    /// <summary>Drops the least recently leased unleased entries past the capacity; call under <see cref="_gate"/>.</summary>
    private void Evict()
    {
        var excess = _byPrompt.Count - _capacity;
        if (excess <= 0)
        {
            return;
        }

        foreach (var entry in _byPrompt.Values.Where(e => e.Leases == 0).OrderBy(e => e.LastUsed).Take(excess).ToList())
        {
            _byPrompt.Remove(entry.Prompt);
            _byHandle.Remove(entry.Handle);
        }
    }

    internal sealed class Entry(string prompt, long handle)
    {
        public string Prompt { get; } = prompt;

        public long Handle { get; } = handle;

        public int Leases { get; set; }

        public long LastUsed { get; set; }

        public Task<float[]>? Encoding { get; set; }
    }

    /// <summary>One search's hold on its prompts' embeddings: their handles, and the encoding of those not yet encoded.</summary>
    public sealed class PromptLease : IDisposable
    {
        private readonly PromptEmbeddingCache _cache;
        private readonly Entry[] _entries;
        private Task<(int Calls, int Hits)>? _encoding;
        private int _disposed;

        internal PromptLease(PromptEmbeddingCache cache, Entry[] entries)
        {
            _cache = cache;
            _entries = entries;
            Handles = [.. entries.Select(e => e.Handle)];
        }

        /// <summary>The handle of each leased prompt, in lease order: the condition ids of the denoiser's steps.</summary>
        public IReadOnlyList<long> Handles { get; }

        /// <summary>
        /// Encodes every leased prompt not yet encoded (once, however often it is called) and waits for all of them: the
        /// encoder calls this lease started and the cache hits (prompts encoded, or being encoded, for someone else).
        /// </summary>
        public Task<(int Calls, int Hits)> EncodeAsync(CancellationToken cancellationToken = default)
        {
            ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) == 1, this);
            lock (_entries)
            {
                _encoding ??= EncodeOnceAsync();
            }

            return _encoding.WaitAsync(cancellationToken);
        }

        /// <summary>Gives the entries back; unleased entries may then be evicted.</summary>
        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                _cache.Release(_entries);
            }
        }

        private async Task<(int Calls, int Hits)> EncodeOnceAsync()
        {
            var (encodings, started) = _cache.Start(_entries);
            await Task.WhenAll(encodings).ConfigureAwait(false);
            return (started, _entries.Length - started);
        }
    }
}
