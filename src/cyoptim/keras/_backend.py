"""Which Keras backends cyoptim.keras can serve, and why only torch.

Kept apart from the rest of cyoptim.keras so that the check can be called
(and tested) for any backend name, whatever backend this process runs.
"""

# Why each backend Keras 3 supports cannot be served: cyoptim's kernels write
# the new values into the memory the variables already own.
_WHY_NOT = {
    "jax": "JAX arrays are immutable: a JAX optimizer returns new arrays and never "
    "updates one in place",
    "tensorflow": "a tf.Variable's memory is owned by TensorFlow's runtime and is "
    "only changed through its assign ops, never written in place from outside",
    "numpy": "Keras's NumPy backend runs inference only: it cannot train",
    "openvino": "Keras's OpenVINO backend runs inference only: it cannot train",
}


def backend_problem(name):
    """Why cyoptim.keras cannot run on Keras backend ``name``, or None for torch."""
    if name == "torch":
        return None
    why = _WHY_NOT.get(
        name,
        "only Keras's torch backend keeps its variables in memory that can be updated in place",
    )
    return (
        f"cyoptim.keras needs Keras's torch backend, but Keras runs on {name!r}: {why}. "
        f"cyoptim's kernels update each variable in place, in the memory it already "
        f"has (on the torch backend a Keras variable is a torch tensor). Set "
        f"KERAS_BACKEND=torch before Keras is first imported"
    )


def check_backend(name):
    """Raise RuntimeError (see backend_problem) unless ``name`` is "torch"."""
    problem = backend_problem(name)
    if problem is not None:
        raise RuntimeError(problem)


def import_keras():
    """Import Keras and check that it runs on the torch backend.

    Raises ImportError with the reason when Keras is not installed, cannot load
    its backend, or runs on another backend.
    """
    try:
        import torch  # noqa: F401  (the backend cyoptim.keras needs)
    except ImportError as error:  # pragma: no cover - depends on the install
        raise ImportError(
            "cyoptim.keras needs PyTorch, Keras's torch backend: pip install 'cyoptim[keras]'"
        ) from error
    try:
        import keras
    except ImportError as error:
        if getattr(error, "name", None) in (None, "keras"):
            raise ImportError(
                "cyoptim.keras needs Keras 3: pip install 'cyoptim[keras]' (or pip install keras)"
            ) from error
        raise ImportError(
            f"Keras could not load its backend ({error}); cyoptim.keras "
            f"needs Keras's torch backend: set KERAS_BACKEND=torch before "
            f"Keras is first imported"
        ) from error
    problem = backend_problem(keras.backend.backend())
    if problem is not None:
        raise ImportError(problem)
    return keras
