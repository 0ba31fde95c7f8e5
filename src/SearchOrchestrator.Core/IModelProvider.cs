using SearchOrchestrator.Denoising;
using SearchOrchestrator.Verifiers;

namespace SearchOrchestrator;

/// <summary>Where the engine finds denoisers and verifiers by name.</summary>
public interface IModelProvider
{
    /// <summary>The denoiser called <paramref name="name"/>.</summary>
    /// <exception cref="ModelNotFoundException">No such denoiser.</exception>
    IDenoiser GetDenoiser(string name);

    /// <summary>The verifier called <paramref name="name"/>.</summary>
    /// <exception cref="ModelNotFoundException">No such verifier.</exception>
    IVerifier GetVerifier(string name);
}

/// <summary>
/// The models a service offers: the repository's ONNX models plus verifiers implemented in C# (the built-in
/// object counter, plug-ins). A C# verifier may not shadow a repository model of the same name.
/// </summary>
public sealed class ModelCatalog : IModelProvider
{
    private readonly IModelProvider _repository;
    private readonly Dictionary<string, IVerifier> _verifiers = new(StringComparer.Ordinal);

    /// <summary>Creates the catalog.</summary>
    public ModelCatalog(IModelProvider repository, IEnumerable<IVerifier> verifiers)
    {
        ArgumentNullException.ThrowIfNull(repository);
        ArgumentNullException.ThrowIfNull(verifiers);
        _repository = repository;
        foreach (var verifier in verifiers)
        {
            if (!_verifiers.TryAdd(verifier.Name, verifier))
            {
                throw new ArgumentException($"Two C# verifiers are named '{verifier.Name}'.", nameof(verifiers));
            }
        }
    }

    /// <summary>The C# verifiers (built in and plug-ins), by name.</summary>
    public IReadOnlyCollection<string> CodeVerifiers => _verifiers.Keys;

    /// <inheritdoc />
    public IDenoiser GetDenoiser(string name) => _repository.GetDenoiser(name);

    /// <inheritdoc />
    public IVerifier GetVerifier(string name) => _verifiers.TryGetValue(name, out var verifier) ? verifier : _repository.GetVerifier(name);
}
