using SearchOrchestrator.Denoising;
using SearchOrchestrator.Verifiers;

namespace SearchOrchestrator.Search;

/// <summary>Where the engine finds denoisers and verifiers by name.</summary>
public interface IModelProvider
{
    /// <summary>The denoiser called <paramref name="name"/>.</summary>
    /// <exception cref="ModelNotFoundException">No such denoiser.</exception>
    IDenoiser GetDenoiser(string name);

    /// <summary>The verifier called <paramref name="name"/>.</summary>
    /// <exception cref="ModelNotFoundException">No such verifier.</exception>
    IVerifier GetVerifier(string name);

    /// <summary>
    /// The stages of the text-to-image pipeline called <paramref name="name"/>, or null when no pipeline has that name
    /// (then <see cref="GetDenoiser"/> says what the name is). Providers without pipelines keep the default.
    /// </summary>
    PipelineStages? GetStages(string name) => null;
}

/// <summary>
/// The models a service offers: the repository's ONNX models plus verifiers implemented in C# (the built-in
/// object counter, plug-ins), and verifiers only remote backends serve. A C# verifier may not shadow a repository model
/// of the same name; a remote verifier is used only where neither has the name.
/// </summary>
public sealed class ModelCatalog : IModelProvider
{
    private readonly IModelProvider _repository;
    private readonly Func<string, IVerifier?>? _remote;
    private readonly Dictionary<string, IVerifier> _verifiers = new(StringComparer.Ordinal);

    /// <summary>Creates the catalog; <paramref name="remote"/> gives a verifier remote backends serve (null: none does).</summary>
    public ModelCatalog(IModelProvider repository, IEnumerable<IVerifier> verifiers, Func<string, IVerifier?>? remote = null)
    {
        ArgumentNullException.ThrowIfNull(repository);
        ArgumentNullException.ThrowIfNull(verifiers);
        _repository = repository;
        _remote = remote;
        foreach (var verifier in verifiers)
        {
            if (!_verifiers.TryAdd(verifier.Name, verifier))
            {
                throw new ArgumentException($"Two C# verifiers are named '{verifier.Name}'.", nameof(verifiers));
            }
        }
    }

    /// <summary>The C# verifiers (built in and plug-ins), by name.</summary>
    public IReadOnlyCollection<string> CodeVerifiers => [.. _verifiers.Values.Where(v => v.Kind == VerifierKinds.Code).Select(v => v.Name)];

    /// <summary>The verifiers given besides the repository's (C# and configured remote ones), by name.</summary>
    public IReadOnlyCollection<IVerifier> Verifiers => _verifiers.Values;

    /// <inheritdoc />
    public IDenoiser GetDenoiser(string name) => _repository.GetDenoiser(name);

    /// <inheritdoc />
    public PipelineStages? GetStages(string name) => _repository.GetStages(name);

    /// <inheritdoc />
    public IVerifier GetVerifier(string name)
    {
        if (_verifiers.TryGetValue(name, out var verifier))
        {
            return verifier;
        }

        try
        {
            return _repository.GetVerifier(name);
        }
        catch (ModelNotFoundException) when (_remote?.Invoke(name) is { } remote)
        {
            return remote;
        }
    }
}
