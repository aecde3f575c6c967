"""The registry: one table row per optimizer, one per kernel.

Everything that lists optimizers reads this module: ``cyoptim.__all__``,
``cyoptim.reference``, the torch and Keras front ends, ``python -m cyoptim
bench``, the demo's choices, and the generic test table
(tests/optimizer_table.py, tests/test_optimizers.py). Adding an optimizer
touches today: its element math (pyx/<kernel>.pxi), its rows here, its class
(cyoptim/optimizers/) and NumPy twin (cyoptim/reference/), their packages'
``__init__``, its Keras rule (cyoptim/keras/_classes.py), its entry in the
test table, the demo's tuned rate (cyoptim/examples/optimizers.py) and the
bench's settings (cyoptim/bench.py).
Muon is an exception: a public class with two KERNELS rows but no OPTIMIZERS
row (see MATRIX_OPTIMIZERS below for why); LBFGS another, with no row at all
(CLOSURE_OPTIMIZERS).

This module imports nothing from cyoptim (classes are named, and resolved
on use), because setup.py loads it at build time, before anything is
compiled, to generate the kernels.

Kernels
-------
setup.py renders ``pyx/optimizers.pxi.tp`` (Tempita, which ships with
Cython) with ``KERNELS`` into ``pyx/_optimizers.pxi``, which every SIMD build
of the kernels includes, and the type stubs of the kernel modules
(pyx/kernel_stubs.py). For each kernel the template generates what used to be
hand-copied plumbing:

- ``<Name>Hyper``: the hyperparameters, one typed field each;
- ``<Name>Run``: the per-run scalars (bias corrections, ...), one typed field each;
- ``<Name>Args``: what a worker thread needs (pointers, the two structs);
- ``_<name>_piece``: one thread's piece of a run, for the element types of
  the group, calling the math;
- ``def <name>_group(plan, group, blocks, n_threads)``: the Python-callable
  kernel, its hyperparameters read from a param group and its state blocks
  from a dict.

What stays hand-written, in ``pyx/<name>.pxi``, is the math:

- ``<name>_elements[floating](p, g, <one pointer per state block>, n, h, r)``:
  the element loop;
- ``<name>_run(h, step, r)``: the per-run scalars from a step count (only
  when the row has run scalars; called once per distinct step count);
- ``<name>_tensor(h, r, <tensor state pointers>)``: advance per-tensor scalar
  state and finish that tensor's run scalars (only with tensor state).

Vocabulary (pyx/common.pxi): a *group* is one param group; a *run* is one
contiguous stretch of params the kernel walks (a tensor, or the whole group
when it lives in one ParamBuffer); a *slice* is one task of the work-sharing
pool; a *piece* is the part of a run one thread updates in one call; a
*chunk* is a fixed-size unit of a reduction.

The element-type axis: ``ELEMENT_TYPES`` lists the (param, grad, state)
storage types a kernel can be instantiated for, keyed by the NumPy type
number the plan records. Every row is instantiated for every entry its
``element_types`` names; a new storage precision is a new entry here (and its
load/store in the math), not a new file per algorithm.
"""

from collections import namedtuple

# name: used in the generated C (ELEM_<name>); c_type: the C type of params,
# grads and states; numpy_type: the cnp enum the plan's typenum is
# compared with.
ElementType = namedtuple("ElementType", "name c_type numpy_type")

ELEMENT_TYPES = (
    ElementType("f32", "float", "NPY_FLOAT32"),
    ElementType("f64", "double", "NPY_FLOAT64"),
)

# A state block: its name (the kernel's keyword argument and the state_dict
# key) and, for optional blocks, the condition on the hyperparameters under
# which it exists (a Cython expression over the kernel's arguments).
Block = namedtuple("Block", "name when", defaults=(None,))

Kernel = namedtuple(
    "Kernel",
    [
        "name",  # the kernel's Python name and the prefix of its C names
        "struct",  # the prefix of its C struct names
        "doc",  # one line: what the kernel computes
        "blocks",  # state blocks, in the element function's argument order
        "hyper",  # (name, C type) of each hyperparameter, keyword-only
        "run_scalars",  # (name, C type) of each per-run scalar; () for none
        "tensor_state",  # names of per-tensor float64 scalar states; () for none
        "cost",  # COST_LIGHT or COST_HEAVY (common.pxi: the thread threshold)
        "driver",  # "generated", or "custom": the .pxi writes its own def
        "element_types",  # names from ELEMENT_TYPES
        "tensor_norms",  # True when an update reads reductions over the whole tensor
        # (LAMB's norms, Adafactor's row and column factors): then a
        # shard of a tensor cannot be stepped alone
    ],
    defaults=((), (), "COST_HEAVY", "generated", ("f32", "f64"), False),
)

D, B = "double", "bint"

KERNELS = (
    Kernel(
        "sgd",
        "SGD",
        "SGD with momentum, dampening and Nesterov (torch.optim.SGD)",
        blocks=(Block("momentum_buffer", "momentum != 0"),),
        hyper=(
            ("lr", D),
            ("momentum", D),
            ("dampening", D),
            ("weight_decay", D),
            ("nesterov", B),
            ("maximize", B),
        ),
        run_scalars=(("first", B),),
        tensor_state=("momentum_started",),
        cost="COST_LIGHT",
    ),
    Kernel(
        "adam",
        "Adam",
        "Adam and AdamW (torch.optim.Adam)",
        blocks=(Block("exp_avg"), Block("exp_avg_sq"), Block("max_exp_avg_sq", "amsgrad")),
        hyper=(
            ("lr", D),
            ("beta1", D),
            ("beta2", D),
            ("eps", D),
            ("weight_decay", D),
            ("amsgrad", B),
            ("maximize", B),
            ("decoupled_weight_decay", B),
        ),
        run_scalars=(("step_size", D), ("bc2_sqrt", D)),
    ),
    Kernel(
        "adagrad",
        "Adagrad",
        "Adagrad (torch.optim.Adagrad)",
        blocks=(Block("sum"),),
        hyper=(("lr", D), ("lr_decay", D), ("eps", D), ("weight_decay", D), ("maximize", B)),
        run_scalars=(("clr", D),),
    ),
    Kernel(
        "rmsprop",
        "RMSprop",
        "RMSprop, centered and with momentum (torch.optim.RMSprop)",
        blocks=(
            Block("square_avg"),
            Block("grad_avg", "centered"),
            Block("momentum_buffer", "momentum > 0"),
        ),
        hyper=(
            ("lr", D),
            ("alpha", D),
            ("eps", D),
            ("weight_decay", D),
            ("momentum", D),
            ("centered", B),
            ("maximize", B),
        ),
    ),
    Kernel(
        "adadelta",
        "Adadelta",
        "Adadelta (torch.optim.Adadelta)",
        blocks=(Block("square_avg"), Block("acc_delta")),
        hyper=(("lr", D), ("rho", D), ("eps", D), ("weight_decay", D), ("maximize", B)),
    ),
    Kernel(
        "adamax",
        "Adamax",
        "Adamax (torch.optim.Adamax)",
        blocks=(Block("exp_avg"), Block("exp_inf")),
        hyper=(
            ("lr", D),
            ("beta1", D),
            ("beta2", D),
            ("eps", D),
            ("weight_decay", D),
            ("maximize", B),
        ),
        run_scalars=(("clr", D),),
    ),
    Kernel(
        "nadam",
        "NAdam",
        "NAdam (torch.optim.NAdam)",
        blocks=(Block("exp_avg"), Block("exp_avg_sq")),
        hyper=(
            ("lr", D),
            ("beta1", D),
            ("beta2", D),
            ("eps", D),
            ("weight_decay", D),
            ("momentum_decay", D),
            ("decoupled_weight_decay", B),
            ("maximize", B),
        ),
        run_scalars=(("mu", D), ("mu_next", D), ("bc2", D), ("coef_grad", D), ("coef_avg", D)),
        tensor_state=("mu_product",),
    ),
    Kernel(
        "radam",
        "RAdam",
        "RAdam (torch.optim.RAdam)",
        blocks=(Block("exp_avg"), Block("exp_avg_sq")),
        hyper=(
            ("lr", D),
            ("beta1", D),
            ("beta2", D),
            ("eps", D),
            ("weight_decay", D),
            ("decoupled_weight_decay", B),
            ("maximize", B),
        ),
        run_scalars=(("bc1", D), ("bc2_sqrt", D), ("rect", D)),
    ),
    Kernel(
        "lion",
        "Lion",
        "Lion (Chen et al. 2023, as optax.lion)",
        blocks=(Block("exp_avg"),),
        hyper=(("lr", D), ("beta1", D), ("beta2", D), ("weight_decay", D), ("maximize", B)),
        cost="COST_LIGHT",
    ),
    Kernel(
        "lamb",
        "Lamb",
        "LAMB (You et al. 2019, as optax.lamb): two passes with norms",
        blocks=(Block("exp_avg"), Block("exp_avg_sq")),
        hyper=(
            ("lr", D),
            ("beta1", D),
            ("beta2", D),
            ("eps", D),
            ("weight_decay", D),
            ("maximize", B),
        ),
        run_scalars=(("bc1", D), ("bc2", D)),
        driver="custom",
        tensor_norms=True,
    ),
    # Muon (cyoptim.Muon) is not element-wise: a step is these two passes with
    # the Newton-Schulz matrix products (NumPy's matmul, a BLAS) between them.
    # Both are generated drivers; `update` is Muon's param-sized scratch block
    # (not state: the class's _all_state_names leaves it out), written by the
    # first pass, orthogonalized in place between the passes, read by the second.
    # lr_ratio is not state either: the class writes it before every step from
    # each param's shape and the group's adjust_lr_fn (torch's _adjust_lr).
    Kernel(
        "muon_momentum",
        "MuonMomentum",
        "Muon's first pass: momentum, the Nesterov blend, the update rounded to bfloat16",
        blocks=(Block("momentum_buffer"), Block("update")),
        hyper=(("momentum", D), ("nesterov", B)),
        cost="COST_LIGHT",
    ),
    Kernel(
        "muon_apply",
        "MuonApply",
        "Muon's last pass: decoupled weight decay and the orthogonalized update",
        blocks=(Block("update"),),
        hyper=(("lr", D), ("weight_decay", D)),
        run_scalars=(("decay", D), ("neg_lr", D)),
        tensor_state=("lr_ratio",),
        cost="COST_LIGHT",
    ),
    Kernel(
        "rprop",
        "Rprop",
        "Rprop (torch.optim.Rprop)",
        blocks=(Block("prev"), Block("step_size")),
        hyper=(
            ("lr", D),
            ("etaminus", D),
            ("etaplus", D),
            ("step_size_min", D),
            ("step_size_max", D),
            ("maximize", B),
        ),
        run_scalars=(("first", B),),
        cost="COST_LIGHT",
    ),
    # Adafactor's state is not param-sized: row_var and col_var hold each
    # factored tensor's row and column factors, variance the unfactored
    # tensors' elements (the class's _state_shape says which param has which,
    # in what shape). A custom driver of three passes with reductions.
    Kernel(
        "adafactor",
        "Adafactor",
        "Adafactor (torch.optim.Adafactor): factored second moments, three passes with norms",
        blocks=(Block("row_var"), Block("col_var"), Block("variance")),
        hyper=(
            ("lr", D),
            ("beta2_decay", D),
            ("eps1", D),
            ("eps2", D),
            ("d", D),
            ("weight_decay", D),
            ("maximize", B),
        ),
        run_scalars=(("beta2_weight", D), ("rho", D)),
        driver="custom",
        tensor_norms=True,
    ),
    Kernel(
        "asgd",
        "ASGD",
        "ASGD (torch.optim.ASGD)",
        blocks=(Block("ax"),),
        hyper=(
            ("lr", D),
            ("lambd", D),
            ("alpha", D),
            ("t0", D),
            ("weight_decay", D),
            ("maximize", B),
        ),
        run_scalars=(
            ("first", B),
            ("eta_next", D),
            ("mu_next", D),
            ("decay", D),
            ("eta", D),
            ("mu", D),
        ),
        tensor_state=("eta", "mu"),
        cost="COST_LIGHT",
    ),
)


# Hyperparameters a param group holds as a pair (torch's names) while the
# kernel takes each half: the generated <kernel>_group unpacks them.
PAIRS = {
    "betas": ("beta1", "beta2"),
    "etas": ("etaminus", "etaplus"),
    "step_sizes": ("step_size_min", "step_size_max"),
}


def group_pairs(kernel):
    """(group key, first name, second name) of the pairs a kernel takes."""
    names = {name for name, _ in kernel.hyper}
    return [(key, a, b) for key, (a, b) in PAIRS.items() if a in names and b in names]


def pair_halves(kernel):
    """The kernel's hyperparameter names that come from a pair."""
    return {name for _, a, b in group_pairs(kernel) for name in (a, b)}


def element_types(kernel):
    """The ElementType entries a kernel is instantiated for, in table order."""
    return [t for t in ELEMENT_TYPES if t.name in kernel.element_types]


# Optimizers
# ----------
# One row per public optimizer class: its name and its kernel. What only the
# tests, the demo and the bench need sits beside them: the generic test table
# (tests/optimizer_table.py, as torch keeps OptimizerInfo in its testing
# package), the demo's tuned rates (cyoptim/examples/optimizers.py) and the
# bench's settings (cyoptim/bench.py).

OptimizerRow = namedtuple(
    "OptimizerRow",
    [
        "name",  # the class name in cyoptim, cyoptim.reference and torch.optim
        "kernel",  # the KERNELS row it calls
        "in_torch",  # whether torch.optim has it (same name, same update)
        "torch_fused",  # whether torch.optim has a fused CPU kernel for it
    ],
)

OPTIMIZERS = (
    OptimizerRow("SGD", "sgd", in_torch=True, torch_fused=True),
    OptimizerRow("Adagrad", "adagrad", in_torch=True, torch_fused=True),
    OptimizerRow("RMSprop", "rmsprop", in_torch=True, torch_fused=False),
    OptimizerRow("Adadelta", "adadelta", in_torch=True, torch_fused=False),
    OptimizerRow("Adam", "adam", in_torch=True, torch_fused=True),
    OptimizerRow("AdamW", "adam", in_torch=True, torch_fused=True),
    OptimizerRow("Adamax", "adamax", in_torch=True, torch_fused=False),
    OptimizerRow("NAdam", "nadam", in_torch=True, torch_fused=False),
    OptimizerRow("RAdam", "radam", in_torch=True, torch_fused=False),
    OptimizerRow("Lion", "lion", in_torch=False, torch_fused=False),
    OptimizerRow("LAMB", "lamb", in_torch=False, torch_fused=False),
    OptimizerRow("Rprop", "rprop", in_torch=True, torch_fused=False),
    OptimizerRow("ASGD", "asgd", in_torch=True, torch_fused=False),
    OptimizerRow("Adafactor", "adafactor", in_torch=True, torch_fused=False),
)

# Public optimizer classes that are not rows of OPTIMIZERS. Muon takes 2-d
# params only, and its step is not element-wise: Newton-Schulz matrix products
# (a BLAS) between its two kernel passes (muon_momentum and muon_apply above).
# Every reader of OPTIMIZERS assumes params of any shape and an element-wise
# update: the generic tests (1-d and 3-d params; torch parity within 1e-5 after
# 100 steps, which a bfloat16 Newton-Schulz summed by another BLAS cannot give:
# torch's own iteration with exact sums is further from torch than that), the
# checkpoint, bad-input and convergence tests (Rosenbrock is a 2-vector), the
# bench layouts (1-d arrays) and the demo (every param of an MLP, biases too).
# tests/test_muon.py checks the same properties for 2-d params, with measured
# bounds against torch; Muon's bench is tools/muon_bench.py, its recipe with
# AdamW is cyoptim.examples.muon.
MATRIX_OPTIMIZERS = ("Muon",)

# Public optimizer classes stepped by a closure: LBFGS (torch.optim.LBFGS)
# evaluates the loss and grads several times per step, over the flat vector of
# all params, with dot products between the evaluations (pyx/lbfgs.pxi). It
# has no kernel row and no NumPy twin: its vector work is not element-wise
# math to restate. tests/test_lbfgs.py compares it with torch.optim.LBFGS
# side by side (logistic regression, Rosenbrock; with and without
# strong_wolfe), in cyoptim and cyoptim.torch.
CLOSURE_OPTIMIZERS = ("LBFGS",)

NAMES = tuple(row.name for row in OPTIMIZERS)
BY_NAME = {row.name: row for row in OPTIMIZERS}
