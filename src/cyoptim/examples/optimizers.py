"""The optimizers the demo compares, with learning rates tuned for the digits MLP.

Each entry names a cyoptim class and is resolved by name when used, so the
demo runs with whatever optimizers this build of cyoptim has and picks up new
ones without a change here.

Learning rates: a sweep over half-decades (1e-4, 3e-4, ..., 3; extended to
1e-5 for Lion and to 10 for Adadelta) with the demo's defaults (MLP
64-128-64-10 ReLU, float32, 20 epochs, batch 32), scored by the mean accuracy
over three seeds on a validation split carved out of the training set (not the
test set the demo reports). The rule: the best mean accuracy; among lrs within
0.002 of it, the one with the lowest validation loss. The update rules equal
torch.optim's (SPEC section 1), so the sweep ran with torch.optim before every
cyoptim class existed; Lion and LAMB ran as NumPy transcriptions of SPEC
section 1. Other hyperparameters are the classes' defaults, plus momentum 0.9
where named.

=========  ==================  ======  =========  ====================================
key        class               lr      val. acc.  runner-up, and where it breaks
=========  ==================  ======  =========  ====================================
sgd        SGD                 0.1     0.968      0.3 (0.969, higher loss); 1 fails
momentum   SGD, momentum 0.9   0.03    0.972      0.01 (0.968); 0.1 fails
nesterov   SGD, Nesterov 0.9   0.01    0.968      0.03 (0.969, higher loss); 0.1 fails
adagrad    Adagrad             0.03    0.973      0.01 (0.969)
rmsprop    RMSprop             3e-3    0.976      1e-3 (0.971); 0.03 drops to 0.92
adadelta   Adadelta            3.0     0.972      1.0 (0.972, higher loss), 10 (0.971)
adam       Adam                3e-3    0.976      0.01 (0.973); 0.1 fails
adamw      AdamW (wd 1e-2)     3e-3    0.976      1e-3 (0.972); 0.1 fails
adamax     Adamax              0.01    0.972      3e-3, 0.03 (0.970)
nadam      NAdam               0.01    0.974      3e-3 (0.972); 0.1 fails
radam      RAdam               0.01    0.973      3e-3 (0.969); 0.1 drops to 0.71
lion       Lion                1e-4    0.963      3e-4 (0.958); 0.01 fails
lamb       LAMB                1e-3    0.972      3e-3 (0.965); 0.03 fails
=========  ==================  ======  =========  ====================================
"""

from dataclasses import dataclass, field

import cyoptim

from .optional import MissingFeatureError


@dataclass(frozen=True)
class OptimizerChoice:
    """One optimizer of the demo: a cyoptim class, its tuned lr and fixed options.

    Attributes:
        key: the name used on the command line (``adam``, ``momentum``, ...).
        label: the name shown in tables and plots.
        class_name: the cyoptim class, looked up when needed.
        lr: the tuned learning rate.
        options: other constructor arguments.
    """

    key: str
    label: str
    class_name: str
    lr: float
    options: dict = field(default_factory=dict)

    def optimizer_class(self):
        """The cyoptim class, or None when this build of cyoptim does not have it."""
        return getattr(cyoptim, self.class_name, None)

    def build(self, params, lr=None):
        """A new optimizer over params (with the tuned lr unless `lr` is given)."""
        cls = self.optimizer_class()
        if cls is None:
            raise MissingFeatureError(f"optimizer {self.key!r} needs cyoptim.{self.class_name}, "
                                      f"which this installation of cyoptim does not have")
        return cls(params, lr=self.lr if lr is None else lr, **self.options)


CHOICES = (
    OptimizerChoice("sgd", "SGD", "SGD", 0.1),
    OptimizerChoice("momentum", "SGD+momentum", "SGD", 0.03, {"momentum": 0.9}),
    OptimizerChoice("nesterov", "Nesterov", "SGD", 0.01, {"momentum": 0.9, "nesterov": True}),
    OptimizerChoice("adagrad", "Adagrad", "Adagrad", 0.03),
    OptimizerChoice("rmsprop", "RMSprop", "RMSprop", 3e-3),
    OptimizerChoice("adadelta", "Adadelta", "Adadelta", 3.0),
    OptimizerChoice("adam", "Adam", "Adam", 3e-3),
    OptimizerChoice("adamw", "AdamW", "AdamW", 3e-3),
    OptimizerChoice("adamax", "Adamax", "Adamax", 0.01),
    OptimizerChoice("nadam", "NAdam", "NAdam", 0.01),
    OptimizerChoice("radam", "RAdam", "RAdam", 0.01),
    OptimizerChoice("lion", "Lion", "Lion", 1e-4),
    OptimizerChoice("lamb", "LAMB", "LAMB", 1e-3),
)
BY_KEY = {choice.key: choice for choice in CHOICES}


def select_optimizers(names=None):
    """The choices to run, and the keys skipped because cyoptim lacks their class.

    Args:
        names: keys (case-insensitive, e.g. ``["adam", "sgd"]``), or None for all.

    Returns:
        ``(choices, skipped)``. With ``names=None`` every available optimizer is
        chosen and the others are listed in ``skipped``. Named optimizers must
        all be available.

    Raises:
        ValueError: an unknown name, or no name at all.
        MissingFeatureError: a named optimizer whose class this build lacks.
    """
    if names is None:
        chosen = [c for c in CHOICES if c.optimizer_class() is not None]
        return chosen, [c.key for c in CHOICES if c.optimizer_class() is None]
    keys = [name.strip().lower() for name in names if name.strip()]
    if not keys:
        raise ValueError("no optimizer named; choose from " + ", ".join(BY_KEY))
    unknown = [key for key in keys if key not in BY_KEY]
    if unknown:
        raise ValueError(f"unknown optimizer(s) {', '.join(unknown)}; choose from "
                         + ", ".join(BY_KEY))
    chosen = [BY_KEY[key] for key in dict.fromkeys(keys)]
    missing = [c for c in chosen if c.optimizer_class() is None]
    if missing:
        raise MissingFeatureError(
            "this installation of cyoptim does not have "
            + ", ".join(f"{c.class_name} (for {c.key!r})" for c in missing))
    return chosen, []
