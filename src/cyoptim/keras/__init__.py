"""cyoptim's optimizers as Keras 3 optimizers, on Keras's torch backend.

    import os; os.environ["KERAS_BACKEND"] = "torch"     # before Keras is imported
    import keras, cyoptim.keras
    model.compile(optimizer=cyoptim.keras.Adam(learning_rate=1e-3), loss=..., metrics=...)
    model.fit(x, y, epochs=10)

Every optimizer of ``cyoptim`` has a class of the same name here, a subclass
of ``keras.optimizers.Optimizer``. Where Keras has the optimizer (SGD,
Adagrad, RMSprop, Adadelta, Adam, AdamW, Adamax, NAdam = ``Nadam``, Lion,
LAMB = ``Lamb``, Adafactor) the class subclasses Keras's: Keras's argument
names, defaults, checks, ``get_config`` and optimizer variables. RAdam, Rprop
and ASGD, which Keras lacks, take cyoptim's arguments (``learning_rate`` for
``lr``) and Keras's common ones. Every class takes Keras's common arguments
(``weight_decay``, ``clipnorm``, ``clipvalue``, ``global_clipnorm``,
``use_ema``, ``ema_momentum``, ``ema_overwrite_frequency``,
``loss_scale_factor``, ``gradient_accumulation_steps``, ``name``), and Keras's
learning-rate schedules and callbacks drive it as any Keras optimizer.

The update rule is Keras's where the kernels can express it (SGD, Adam,
AdamW, Adagrad, Adadelta, NAdam, Lion, LAMB: equal to ``keras.optimizers``
up to rounding) and torch's otherwise (RMSprop and Adamax, whose epsilon sits
elsewhere in Keras; Adafactor; and RAdam, Rprop, ASGD): each class's
docstring says which, and how they differ.

The update: Keras's collective update step is one kernel call per group of
variables (one dtype, one weight decay), writing the torch tensors the
variables hold, in place. Variables must be dense, contiguous float32 or
float64 CPU tensors (a mixed-precision policy keeps its variables in
float32). Weight decay is Keras's (decoupled, ``w *= 1 - lr*weight_decay``
before the update): for Adam, AdamW, NAdam, Lion and RAdam the kernel applies
it in the same pass, for the others Keras's own pass does.

Saving: the classes are registered as Keras serializable objects (package
``cyoptim``), so ``model.save`` / ``keras.saving.load_model`` round trip the
optimizer with its variables; import cyoptim.keras before loading.

Other backends are refused: JAX arrays are immutable and TensorFlow owns its
variables' memory, so neither can be updated in place
(``cyoptim.keras._backend.backend_problem`` says why for each).

Needs Keras 3 and torch (``pip install "cyoptim[keras]"``); ``import cyoptim``
alone never imports either.
"""

from ._backend import import_keras

keras = import_keras()

from .. import registry  # noqa: E402
from ._classes import make_class  # noqa: E402
from ._optimizer import Optimizer  # noqa: E402

__all__ = ["Optimizer"] + list(registry.NAMES)

for _row in registry.OPTIMIZERS:
    globals()[_row.name] = make_class(_row, __name__)
del _row

# Keras's spelling of two names.
Nadam = globals()["NAdam"]
Lamb = globals()["LAMB"]
