"""The optimizers the demo compares, with learning rates tuned for the digits MLP.

Each entry names a cyoptim class and is resolved by name when used, so the
demo runs with whatever optimizers this build of cyoptim has and picks up new
ones without a change here.

Learning rates: a sweep over half-decades (1e-4, 3e-4, ..., 3) with the demo's
defaults (MLP 64-128-64-10 ReLU, float32, 20 epochs, batch 32), three seeds,
scored by accuracy on a validation split carved out of the training set (not
the test set the demo reports). The update rules equal torch.optim's, so the
sweep could run before every cyoptim class existed; Lion and LAMB were swept
with NumPy transcriptions of SPEC section 1. Other hyperparameters are the
classes' defaults, plus momentum 0.9 where named.

=========  =================  ======  ==============  =====================
key        class              lr      mean val. acc.  note
=========  =================  ======  ==============  =====================
sgd        SGD                0.1     0.968           0.3 ties, less stable
momentum   SGD (momentum .9)  0.03    0.972
nesterov   SGD (Nesterov .9)  0.03    0.971
adagrad    Adagrad            0.03    0.972
rmsprop    RMSprop            1e-3    0.973
adadelta   Adadelta           1.0     0.972           torch's default
adam       Adam               3e-3    0.976
adamw      AdamW              3e-3    0.976           weight_decay 1e-2
adamax     Adamax             3e-3    0.975
nadam      NAdam              3e-3    0.975
radam      RAdam              3e-3    0.975
lion       Lion               3e-4    0.974
lamb       LAMB               1e-2    0.975
=========  =================  ======  ==============  =====================
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
    OptimizerChoice("nesterov", "Nesterov", "SGD", 0.03, {"momentum": 0.9, "nesterov": True}),
    OptimizerChoice("adagrad", "Adagrad", "Adagrad", 0.03),
    OptimizerChoice("rmsprop", "RMSprop", "RMSprop", 1e-3),
    OptimizerChoice("adadelta", "Adadelta", "Adadelta", 1.0),
    OptimizerChoice("adam", "Adam", "Adam", 3e-3),
    OptimizerChoice("adamw", "AdamW", "AdamW", 3e-3),
    OptimizerChoice("adamax", "Adamax", "Adamax", 3e-3),
    OptimizerChoice("nadam", "NAdam", "NAdam", 3e-3),
    OptimizerChoice("radam", "RAdam", "RAdam", 3e-3),
    OptimizerChoice("lion", "Lion", "Lion", 3e-4),
    OptimizerChoice("lamb", "LAMB", "LAMB", 1e-2),
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
