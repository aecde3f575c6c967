"""The optimizers the demo compares, with learning rates tuned for the digits MLP.

Each entry holds a cyoptim optimizer class, its tuned learning rate and any
fixed options; the entries are the ``demo`` column of cyoptim.registry.

Learning rates come from ``tools/tune_demo_lrs.py``: a sweep over
half-decades (1e-5 ... 10) with the demo's defaults (MLP 64-128-64-10 ReLU,
float32, 20 epochs, batch 32), scored by the mean accuracy over three seeds on
a validation split carved out of the training set (never the test set the
demo reports). The plateau is every lr within 0.005 of the best mean accuracy
(about the spread between seeds); the pick is its middle lr, the lower of the
two middle ones when the plateau has an even length: the safe side of the
cliff where training breaks. Adadelta, NAdam and LAMB were swept with
stand-ins before their cyoptim classes were merged (torch.optim for the first
two, whose update cyoptim reproduces, docs/contract.md section 1; a NumPy
transcription of its LAMB rule). Other hyperparameters are the classes' defaults,
plus momentum 0.9 where named.

=========  ==================  ======  =========  ===========  ==========================
key        class               lr      val. acc.  plateau      breaks (val. acc. < 0.9) at
=========  ==================  ======  =========  ===========  ==========================
sgd        SGD                 0.1     0.968      0.1 - 0.3    1 (0.12)
momentum   SGD, momentum 0.9   0.01    0.969      0.01 - 0.03  0.1 (0.64)
nesterov   SGD, Nesterov 0.9   0.01    0.966      0.01 - 0.03  0.1 (0.50)
adagrad    Adagrad             0.01    0.972      0.01 - 0.03  1 (0.62)
rmsprop    RMSprop             1e-3    0.972      1e-3 - 3e-3  0.1 (0.23)
adadelta   Adadelta            3.0     0.973      1 - 10       not below 10
adam       Adam                1e-3    0.971      1e-3 - 3e-3  0.1 (0.14)
adamw      AdamW (wd 1e-2)     3e-3    0.974      1e-3 - 0.01  0.1 (0.17)
adamax     Adamax              0.01    0.974      3e-3 - 0.03  0.3 (0.66)
nadam      NAdam               3e-3    0.974      1e-3 - 0.01  0.1 (0.15)
radam      RAdam               0.01    0.973      0.01 - 0.03  0.1 (0.58)
lion       Lion                1e-4    0.964      1e-4         0.01 (0.20)
lamb       LAMB                1e-3    0.976      1e-3         0.03 (0.08)
rprop      Rprop, steps<=3e-3  3e-3    0.925      3e-3         not in 1e-5 - 3e-3 (0.91+)
asgd       ASGD                0.1     0.968      0.1 - 0.3    1 (0.62)
=========  ==================  ======  =========  ===========  ==========================

Rprop is a full-batch method (its sign rule needs gradients whose signs mean
something from one step to the next) and trails every other optimizer on
these minibatches. Its lr is only the initial step size, so its demo entry
also caps the step sizes (``step_sizes=(1e-6, 3e-3)``): with the default cap
of 50 the best lr reached 0.91 with a diverging loss; caps of 1e-3 and 1e-2
gave 0.92.
"""

from collections import namedtuple
from dataclasses import dataclass, field

from .. import optimizers, registry


@dataclass(frozen=True)
class OptimizerChoice:
    """One optimizer of the demo: a cyoptim class, its tuned lr and fixed options.

    Attributes:
        key: the name used on the command line (``adam``, ``momentum``, ...).
        label: the name shown in tables and plots.
        optimizer_class: the cyoptim class.
        lr: the tuned learning rate.
        options: other constructor arguments.
    """

    key: str
    label: str
    optimizer_class: type
    lr: float
    options: dict = field(default_factory=dict)

    def build(self, params, lr=None):
        """A new optimizer over params (with the tuned lr unless `lr` is given)."""
        return self.optimizer_class(params, lr=self.lr if lr is None else lr, **self.options)


# A tuned configuration of an optimizer. key: the command-line name; options:
# constructor arguments besides lr.
Choice = namedtuple("Choice", "key label lr options", defaults=({},))

# Per registry row, the demo's configurations (tuned on the digits MLP:
# tools/tune_demo_lrs.py).
DEMO_CHOICES = {
    "SGD": (
        Choice("sgd", "SGD", 0.1),
        Choice("momentum", "SGD+momentum", 0.01, {"momentum": 0.9}),
        Choice("nesterov", "Nesterov", 0.01, {"momentum": 0.9, "nesterov": True}),
    ),
    "Adagrad": (Choice("adagrad", "Adagrad", 0.01),),
    "RMSprop": (Choice("rmsprop", "RMSprop", 1e-3),),
    "Adadelta": (Choice("adadelta", "Adadelta", 3.0),),
    "Adam": (Choice("adam", "Adam", 1e-3),),
    "AdamW": (Choice("adamw", "AdamW", 3e-3),),
    "Adamax": (Choice("adamax", "Adamax", 0.01),),
    "NAdam": (Choice("nadam", "NAdam", 3e-3),),
    "RAdam": (Choice("radam", "RAdam", 0.01),),
    "Lion": (Choice("lion", "Lion", 1e-4),),
    "LAMB": (Choice("lamb", "LAMB", 1e-3),),
    "Rprop": (Choice("rprop", "Rprop", 3e-3, {"step_sizes": (1e-6, 3e-3)}),),
    "ASGD": (Choice("asgd", "ASGD", 0.1),),
    "Adafactor": (Choice("adafactor", "Adafactor", 3e-2),),
}

# Every configuration, in registry order.
CHOICES = tuple(
    OptimizerChoice(
        choice.key, choice.label, getattr(optimizers, row.name), choice.lr, dict(choice.options)
    )
    for row in registry.OPTIMIZERS
    for choice in DEMO_CHOICES[row.name]
)
BY_KEY = {choice.key: choice for choice in CHOICES}


def select_optimizers(names=None):
    """The choices to run, in the order named (duplicates dropped).

    Args:
        names: keys (case-insensitive, e.g. ``["adam", "sgd"]``), or None for all.

    Returns:
        A list of :class:`OptimizerChoice`.

    Raises:
        ValueError: an unknown name, or no name at all; the message lists the valid names.
    """
    if names is None:
        return list(CHOICES)
    keys = [name.strip().lower() for name in names if name.strip()]
    if not keys:
        raise ValueError("no optimizer named; choose from " + ", ".join(BY_KEY))
    unknown = [key for key in keys if key not in BY_KEY]
    if unknown:
        raise ValueError(
            f"unknown optimizer(s) {', '.join(unknown)}; choose from " + ", ".join(BY_KEY)
        )
    return [BY_KEY[key] for key in dict.fromkeys(keys)]
