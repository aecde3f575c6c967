"""The generic test table: per optimizer of cyoptim.registry.OPTIMIZERS, the
settings of the tests every optimizer gets (tests/test_optimizers.py and the
other generic tests), as torch keeps OptimizerInfo in its testing package.
A new optimizer gets every generic check by adding its entry here.
"""

from collections import namedtuple

import cyoptim
import cyoptim.reference
from cyoptim import registry

# Settings of the generic tests (tests/test_optimizers.py):
#   flags        name -> values: every combination is checked against torch
#                and the NumPy twin (a combination the class refuses is left out);
#   torch        constructor kwargs of the torch comparison, with lr given per
#                dtype as (float64, float32) (see tests/optim_harness.torch_test_lr);
#   torch_group  options of the second param group of the torch comparison;
#   reference, reference_group: the same for the comparison with the NumPy twin;
#   invariance   kwargs of the thread-count, SIMD-variant and state_dict checks;
#   convergence  label -> Convergence: the configurations that must minimize
#                Rosenbrock and a least-squares problem (tests/test_convergence.py);
#   switches     hyperparameter -> the values group 0 takes in turn, a few steps
#                each, compared with torch (state_dict and resumed runs too).
Testing = namedtuple(
    "Testing",
    "flags torch torch_group reference reference_group invariance convergence switches",
    defaults=({},),
)
# options: constructor arguments besides lr; rosenbrock, least_squares: (lr,
# gamma, steps) with lr_t = lr * gamma^t; least_squares_options: extra
# constructor arguments of the least-squares run.
Convergence = namedtuple(
    "Convergence", "options rosenbrock least_squares least_squares_options", defaults=({},)
)

ADAM_FLAGS = dict(
    amsgrad=(False, True),
    maximize=(False, True),
    weight_decay=(0.0, 0.1),
    decoupled_weight_decay=(False, True),
)

TESTING = {
    "SGD": Testing(
        flags=dict(
            momentum=(0.0, 0.9),
            dampening=(0.0, 0.3),
            nesterov=(False, True),
            weight_decay=(0.0, 0.01),
            maximize=(False, True),
        ),
        torch=dict(lr=(1e-2, 1e-4)),
        torch_group=dict(lr_scale=2),
        reference=dict(lr=1e-2),
        reference_group=dict(lr=0.1, momentum=0.5),
        invariance=dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
        switches={"momentum": (0.0, 0.9, 0.0, 0.9), "dampening": (0.3, 0.3, 0.0, 0.3)},
        convergence={
            "SGD": Convergence({}, (1e-3, 1.0, 12000), (0.3, 1.0, 100)),
            "SGD-momentum": Convergence({"momentum": 0.9}, (1e-3, 1.0, 1500), (0.1, 1.0, 300)),
            "SGD-nesterov": Convergence(
                {"momentum": 0.9, "nesterov": True}, (7e-4, 1.0, 2000), (0.1, 1.0, 200)
            ),
        },
    ),
    "Adagrad": Testing(
        flags=dict(
            maximize=(False, True),
            weight_decay=(0.0, 0.1),
            lr_decay=(0.0, 0.01),
            initial_accumulator_value=(0.0, 0.1),
        ),
        torch=dict(lr=(1e-2, 3e-3)),
        torch_group=dict(
            lr_scale=3, lr_decay=0.05, weight_decay=0.05, initial_accumulator_value=0.5
        ),
        reference=dict(lr=0.1),
        reference_group=dict(lr=0.3, lr_decay=0.5, eps=1e-3),
        invariance=dict(lr=0.1, lr_decay=0.01, weight_decay=0.1, initial_accumulator_value=0.1),
        convergence={"Adagrad": Convergence({}, (0.85, 1.0, 8000), (1.0, 1.0, 100))},
    ),
    "RMSprop": Testing(
        flags=dict(
            maximize=(False, True),
            weight_decay=(0.0, 0.1),
            momentum=(0.0, 0.9),
            centered=(False, True),
        ),
        torch=dict(lr=(1e-2, 1e-4)),
        torch_group=dict(lr_scale=2, alpha=0.9, eps=1e-6),
        reference=dict(lr=1e-2),
        reference_group=dict(lr=0.1, alpha=0.3, momentum=0.5, eps=1e-3),
        invariance=dict(lr=0.01, momentum=0.9, centered=True, weight_decay=0.1),
        switches={"momentum": (0.9, 0.0, 0.9), "centered": (True, False, True)},
        convergence={
            "RMSprop": Convergence({}, (0.1, 0.998, 3500), (0.1, 0.995, 400)),
            "RMSprop-centered": Convergence(
                {"centered": True}, (0.03, 0.998, 3500), (0.1, 0.995, 400)
            ),
        },
    ),
    "Adadelta": Testing(
        flags=dict(maximize=(False, True), weight_decay=(0.0, 0.1), rho=(0.9, 0.3)),
        torch=dict(lr=(1.0, 0.1)),
        torch_group=dict(lr_scale=0.5, eps=1e-4),
        reference=dict(lr=1.0),
        reference_group=dict(lr=0.3, rho=0.5, eps=1e-3),
        invariance=dict(lr=1.0, weight_decay=0.1),
        convergence={"Adadelta": Convergence({}, (2.0, 0.999, 4000), (0.5, 1.0, 1500))},
    ),
    "Adam": Testing(
        flags=ADAM_FLAGS,
        torch=dict(lr=(1e-3, 1e-3), betas=(0.8, 0.99), eps=1e-6),
        torch_group=dict(lr=3e-3, weight_decay=0.05),
        reference=dict(lr=1e-2),
        reference_group=dict(lr=0.1, betas=(0.3, 0.5)),
        invariance=dict(amsgrad=True, weight_decay=0.1),
        switches={"weight_decay": (0.0, 0.1, 0.0), "maximize": (False, True)},
        convergence={
            "Adam": Convergence({}, (0.5, 0.999, 1200), (0.1, 0.995, 300)),
            "Adam-amsgrad": Convergence({"amsgrad": True}, (0.2, 1.0, 1000), (0.1, 1.0, 300)),
        },
    ),
    "AdamW": Testing(
        flags=dict(amsgrad=(False, True), maximize=(False, True)),
        torch=dict(lr=(1e-3, 1e-3)),
        torch_group=dict(lr=2e-3),
        reference=dict(lr=1e-2),
        reference_group=dict(lr=0.1, betas=(0.3, 0.5)),
        invariance=dict(amsgrad=True, weight_decay=0.1),
        convergence={
            "AdamW": Convergence({}, (0.1, 0.999, 3500), (0.1, 0.995, 400), {"weight_decay": 1e-4})
        },
    ),
    "Adamax": Testing(
        flags=dict(maximize=(False, True), weight_decay=(0.0, 0.1)),
        torch=dict(lr=(2e-3, 2e-3), betas=(0.8, 0.99), eps=1e-6),
        torch_group=dict(lr=5e-3, weight_decay=0.05),
        reference=dict(lr=1e-2),
        reference_group=dict(lr=0.1, betas=(0.3, 0.5)),
        invariance=dict(lr=1e-2, weight_decay=0.01),
        convergence={"Adamax": Convergence({}, (0.01, 1.0, 6000), (0.3, 0.995, 300))},
    ),
    "NAdam": Testing(
        flags=dict(
            maximize=(False, True),
            weight_decay=(0.0, 0.1),
            decoupled_weight_decay=(False, True),
        ),
        torch=dict(lr=(2e-3, 2e-3), betas=(0.8, 0.99), eps=1e-6, momentum_decay=0.01),
        torch_group=dict(lr=5e-3, weight_decay=0.05, momentum_decay=4e-3),
        reference=dict(lr=1e-2),
        reference_group=dict(lr=0.1, betas=(0.3, 0.5)),
        invariance=dict(lr=1e-2, weight_decay=0.01, decoupled_weight_decay=True),
        convergence={"NAdam": Convergence({}, (0.1, 0.999, 2000), (0.1, 0.995, 300))},
    ),
    "RAdam": Testing(
        flags=dict(
            maximize=(False, True),
            weight_decay=(0.0, 0.1),
            decoupled_weight_decay=(False, True),
        ),
        torch=dict(lr=(1e-3, 1e-3), betas=(0.8, 0.99), eps=1e-6),
        torch_group=dict(lr=3e-3, weight_decay=0.05),
        reference=dict(lr=1e-2),
        reference_group=dict(lr=0.1, betas=(0.3, 0.5)),
        invariance=dict(lr=1e-2, weight_decay=0.01),
        convergence={"RAdam": Convergence({}, (7e-3, 1.0, 9000), (0.3, 0.995, 300))},
    ),
    "Lion": Testing(
        flags=dict(maximize=(False, True), weight_decay=(0.0, 0.3)),
        torch=None,
        torch_group=None,
        reference=dict(lr=1e-2, betas=(0.8, 0.95)),
        reference_group=dict(lr=0.1, betas=(0.3, 0.5), weight_decay=0.05),
        invariance=dict(lr=1e-3, weight_decay=0.1),
        convergence={"Lion": Convergence({}, (0.1, 0.995, 1500), (0.03, 0.995, 1500))},
    ),
    "LAMB": Testing(
        flags=dict(maximize=(False, True), weight_decay=(0.0, 0.1)),
        torch=None,
        torch_group=None,
        reference=dict(lr=1e-2, eps=1e-6),
        reference_group=dict(lr=0.1, betas=(0.3, 0.5), weight_decay=0.05),
        invariance=dict(lr=1e-2, weight_decay=0.1),
        convergence={"LAMB": Convergence({}, (0.2, 0.995, 2000), (0.03, 0.995, 1500))},
    ),
    "Rprop": Testing(
        flags=dict(
            maximize=(False, True),
            etas=((0.5, 1.2), (0.3, 1.5)),
            step_sizes=((1e-6, 50), (1e-3, 0.05)),
        ),
        torch=dict(lr=(1e-2, 1e-2)),
        torch_group=dict(lr_scale=2, etas=(0.7, 1.1), step_sizes=(1e-4, 0.02)),
        reference=dict(lr=1e-2),
        reference_group=dict(lr=0.1, etas=(0.2, 2.0), step_sizes=(0.01, 0.5)),
        invariance=dict(lr=1e-2, step_sizes=(1e-3, 0.05)),
        switches={
            "etas": ((0.5, 1.2), (0.2, 2.0), (0.5, 1.2)),
            "step_sizes": ((1e-6, 50), (1e-3, 0.02), (0.01, 0.5)),
        },
        convergence={"Rprop": Convergence({}, (1e-3, 1.0, 2000), (1e-3, 1.0, 100))},
    ),
    "ASGD": Testing(
        flags=dict(
            maximize=(False, True), weight_decay=(0.0, 0.1), t0=(1e6, 20.0), lambd=(1e-4, 0.5)
        ),
        torch=dict(lr=(1e-2, 1e-3), alpha=0.6),
        torch_group=dict(lr_scale=2, lambd=0.1, t0=5.5, weight_decay=0.05),
        reference=dict(lr=1e-2),
        reference_group=dict(lr=0.1, lambd=0.3, alpha=1.5, t0=3.0),
        invariance=dict(lr=1e-2, t0=2.0, lambd=0.1, weight_decay=0.1),
        switches={
            "t0": (1e6, 0.0, 1e6),
            "lambd": (1e-4, 0.3, 1e-4),
            "weight_decay": (0.0, 0.1, 0.0),
            "lr": (1e-2, 3e-2, 1e-2),
        },
        convergence={"ASGD": Convergence({}, (1e-3, 1.0, 12000), (0.3, 1.0, 100))},
    ),
    "Adafactor": Testing(
        flags=dict(
            maximize=(False, True),
            weight_decay=(0.0, 0.1),
            d=(1.0, 2.0),
            eps=((None, 1e-3), (1e-3, 0.5)),
        ),
        torch=dict(lr=(1e-2, 1e-3)),
        torch_group=dict(lr_scale=3, beta2_decay=-0.5, eps=(1e-6, 1e-2), d=1.5),
        reference=dict(lr=1e-2),
        reference_group=dict(lr=0.05, beta2_decay=-0.6, eps=(1e-4, 0.1), d=3.0, weight_decay=0.05),
        invariance=dict(lr=1e-2, weight_decay=0.1),
        switches={
            "weight_decay": (0.0, 0.1, 0.0),
            "maximize": (False, True),
            "d": (1.0, 2.0, 1.0),
        },
        # Least squares starts from x = 0, where the step is eps2 * rho
        # (relative to the param's RMS): a larger eps2 gets it moving.
        convergence={
            "Adafactor": Convergence(
                {}, (0.1, 0.999, 5000), (0.3, 0.99, 300), {"eps": (None, 0.1)}
            )
        },
    ),
}


def row_settings(row):
    """The Testing entry of a registry row."""
    return TESTING[row.name]


def optimizer_class(row):
    """The cyoptim class of a registry row."""
    return getattr(cyoptim, row.name)


def reference_class(row):
    """The NumPy twin of a registry row (cyoptim.reference)."""
    return getattr(cyoptim.reference, row.name)


assert set(TESTING) == set(registry.NAMES), "every optimizer row has its test entry"
