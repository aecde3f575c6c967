"""One cyoptim.keras class per registry row, and the rule of each.

A row that Keras also has (SGD, Adagrad, RMSprop, Adadelta, Adam, AdamW,
Adamax, NAdam as ``keras.optimizers.Nadam``, Lion, LAMB as
``keras.optimizers.Lamb``, Adafactor) becomes a subclass of that Keras class:
its constructor, argument checks, ``get_config`` and optimizer variables
(names, shapes, order) are Keras's own, so a Keras checkpoint's optimizer
variables line up with them. A row Keras lacks (RAdam, Rprop, ASGD) becomes
a subclass of ``keras.optimizers.Optimizer`` whose arguments are cyoptim's
(``learning_rate`` for ``lr``, and Keras's common arguments) and whose
optimizer variables carry cyoptim's state names.

Each class has a rule: the kernel it calls, which optimizer variables hold
the kernel's state blocks, and the kernel's hyperparameters at a step. Where
Keras's update differs from torch's, the rule either expresses Keras's update
through the kernel's hyperparameters (exactly, up to rounding) or follows
torch's and says so in the class's docstring (RULES below, and the README's
table).
"""

import inspect
import math

import keras
import numpy as np
import torch

from .. import optimizers, precision, registry
from ._optimizer import Optimizer

_BASE_ARGS = (
    "weight_decay",
    "clipnorm",
    "clipvalue",
    "global_clipnorm",
    "use_ema",
    "ema_momentum",
    "ema_overwrite_frequency",
    "loss_scale_factor",
    "gradient_accumulation_steps",
    "name",
)


# The low-precision options of cyoptim's classes (docs/contract.md §7), not
# offered here: Keras's variables are float32 or float64 (its mixed precision
# keeps float32 variables), and so are the optimizer variables.
_PRECISION_ARGS = tuple(
    name for name in inspect.signature(precision.check).parameters if name != "kernel"
)


def _as_dtype(x, dtype):
    """x rounded to the variables' dtype, as Keras casts its hyperparameters."""
    return float(np.float32(x)) if dtype == torch.float32 else float(x)


class Rule:
    """How a class drives its kernel (see the module docstring)."""

    keras_name: str | None = None  # the keras.optimizers class it subclasses (None: Optimizer)
    follows = "Keras"  # whose update rule: "Keras" or "torch"
    slots: dict[str, str] = {}  # kernel block -> the attribute of Keras's build that holds it
    keras_build = True  # whether Keras's build creates the optimizer variables
    folds_decay = False  # whether the kernel applies Keras's weight decay
    defaults: dict = {}  # constructor defaults that differ from Keras's
    scratch_names: tuple[str, ...] = ()
    state_shape = None

    def __init__(self, row):
        self.row = row
        self.kernel = row.kernel
        kernel = next(k for k in registry.KERNELS if k.name == row.kernel)
        self.blocks = tuple(b.name for b in kernel.blocks)
        spec = getattr(optimizers, row.name)
        self.spec = spec
        self.scalar_names = tuple(n for n, s in spec._tensor_state.items() if s.exported)
        self.internal_names = tuple(n for n, s in spec._tensor_state.items() if not s.exported)

    def build(self, opt, variables):
        """kernel block -> the list of optimizer variables holding it, one per
        variable (None where a variable has none); exported scalar states too."""
        slots = {}
        for name, attribute in self.slots.items():
            values = getattr(opt, attribute, None)
            if values:
                slots[name] = list(values)
        return slots

    def grads(self, opt, grads, lr):
        return grads

    def internal(self, opt, name):
        raise NotImplementedError(name)

    def hyper(self, opt, lr, step, dtype, weight_decay):
        """The kernel's hyperparameters for this step (a param group of its names)."""
        raise NotImplementedError


class SGDRule(Rule):
    keras_name = "SGD"
    slots = {"momentum_buffer": "momentums"}

    def grads(self, opt, grads, lr):
        if opt.momentum != 0 and opt.nesterov:
            # Nesterov needs -lr*g in two places of the kernel's rule: the
            # grads are scaled into new tensors (Keras's grads stay as they are).
            return torch._foreach_mul(grads, -lr)
        return grads

    def internal(self, opt, name):
        return 1.0  # momentum_started: Keras's velocity starts at 0, not at g

    def hyper(self, opt, lr, step, dtype, weight_decay):
        m = opt.momentum
        if m == 0:
            return dict(
                lr=lr,
                momentum=0.0,
                dampening=0.0,
                weight_decay=0.0,
                nesterov=False,
                maximize=False,
            )
        # The kernel: b = b*m + (1 - dampening)*g; p += -lr_k * (b, or g + m*b).
        # Keras: v = m*v - lr*g; p += v (or p += m*v - lr*g). So lr_k = -1 and
        # 1 - dampening = -lr, or (Nesterov) grads already scaled by -lr.
        return dict(
            lr=-1.0,
            momentum=m,
            dampening=0.0 if opt.nesterov else 1.0 + lr,
            weight_decay=0.0,
            nesterov=bool(opt.nesterov),
            maximize=False,
        )


class AdamRule(Rule):
    keras_name = "Adam"
    slots = {
        "exp_avg": "_momentums",
        "exp_avg_sq": "_velocities",
        "max_exp_avg_sq": "_velocity_hats",
    }
    folds_decay = True

    def hyper(self, opt, lr, step, dtype, weight_decay):
        # The kernel divides by sqrt(v)/sqrt(1 - b2^t) + eps_k; Keras by
        # sqrt(v) + eps with sqrt(1 - b2^t) in the step size. eps_k =
        # eps/sqrt(1 - b2^t) makes them the same.
        b1, b2 = _as_dtype(opt.beta_1, dtype), _as_dtype(opt.beta_2, dtype)
        return dict(
            lr=lr,
            betas=(b1, b2),
            eps=opt.epsilon / math.sqrt(1 - b2**step),
            weight_decay=weight_decay,
            amsgrad=bool(opt.amsgrad),
            maximize=False,
            decoupled_weight_decay=True,
        )


class AdamWRule(AdamRule):
    keras_name = "AdamW"


class AdagradRule(Rule):
    keras_name = "Adagrad"
    slots = {"sum": "_accumulators"}

    def build(self, opt, variables):
        slots = super().build(opt, variables)
        # Keras divides by sqrt(acc + eps), the kernel by sqrt(s) + eps_k: with
        # s = acc + eps (added once, here) and eps_k = 0 they are the same.
        torch._foreach_add_([v.value for v in slots["sum"]], float(opt.epsilon))
        return slots

    def hyper(self, opt, lr, step, dtype, weight_decay):
        return dict(lr=lr, lr_decay=0.0, eps=0.0, weight_decay=0.0, maximize=False)


class RMSpropRule(Rule):
    keras_name = "RMSprop"
    follows = "torch"
    slots = {
        "square_avg": "_velocities",
        "grad_avg": "_average_gradients",
        "momentum_buffer": "_momentums",
    }

    def hyper(self, opt, lr, step, dtype, weight_decay):
        return dict(
            lr=lr,
            alpha=opt.rho,
            eps=opt.epsilon,
            weight_decay=0.0,
            momentum=opt.momentum,
            centered=bool(opt.centered),
            maximize=False,
        )


class AdadeltaRule(Rule):
    keras_name = "Adadelta"
    slots = {"square_avg": "_accumulated_grads", "acc_delta": "_accumulated_delta_vars"}

    def hyper(self, opt, lr, step, dtype, weight_decay):
        return dict(lr=lr, rho=opt.rho, eps=opt.epsilon, weight_decay=0.0, maximize=False)


class AdamaxRule(Rule):
    keras_name = "Adamax"
    follows = "torch"
    slots = {"exp_avg": "_m", "exp_inf": "_u"}

    def hyper(self, opt, lr, step, dtype, weight_decay):
        return dict(
            lr=lr,
            betas=(opt.beta_1, opt.beta_2),
            eps=opt.epsilon,
            weight_decay=0.0,
            maximize=False,
        )


class NAdamRule(Rule):
    keras_name = "Nadam"
    slots = {"exp_avg": "_momentums", "exp_avg_sq": "_velocities"}
    folds_decay = True

    def build(self, opt, variables):
        slots = super().build(opt, variables)
        slots["mu_product"] = [opt._u_product] * len(variables)  # one for all, as Keras
        return slots

    def hyper(self, opt, lr, step, dtype, weight_decay):
        # Keras's mu_t = beta_1 * (1 - 0.5 * 0.96^t): torch's with momentum_decay 1.
        b1, b2 = _as_dtype(opt.beta_1, dtype), _as_dtype(opt.beta_2, dtype)
        return dict(
            lr=lr,
            betas=(b1, b2),
            eps=opt.epsilon,
            weight_decay=weight_decay,
            momentum_decay=1.0,
            decoupled_weight_decay=True,
            maximize=False,
        )


class LionRule(Rule):
    keras_name = "Lion"
    slots = {"exp_avg": "_momentums"}
    folds_decay = True

    def hyper(self, opt, lr, step, dtype, weight_decay):
        return dict(
            lr=lr,
            betas=(_as_dtype(opt.beta_1, dtype), _as_dtype(opt.beta_2, dtype)),
            weight_decay=weight_decay,
            maximize=False,
        )


class LAMBRule(Rule):
    keras_name = "Lamb"
    slots = {"exp_avg": "_momentums", "exp_avg_sq": "_velocities"}
    scratch_names = ("update",)

    def hyper(self, opt, lr, step, dtype, weight_decay):
        b1, b2 = _as_dtype(opt.beta_1, dtype), _as_dtype(opt.beta_2, dtype)
        return dict(lr=lr, betas=(b1, b2), eps=opt.epsilon, weight_decay=0.0, maximize=False)


class TorchLayoutRule(Rule):
    """torch's rule, and optimizer variables named and shaped as torch's state."""

    follows = "torch"
    keras_build = False

    def names(self, opt):
        return self.spec._state_names(None, opt._hyper)

    def build(self, opt, variables):
        slots = {}
        shape_of = self.state_shape or (lambda name, shape: shape)
        for name in self.names(opt):
            slots[name] = []
            for variable in variables:
                shape = shape_of(name, tuple(variable.shape))
                if shape is None:
                    slots[name].append(None)
                elif shape == tuple(variable.shape):
                    slots[name].append(opt.add_variable_from_reference(variable, name))
                else:
                    slots[name].append(
                        opt.add_variable(
                            shape, dtype=variable.dtype, name=f"{_sanitized(variable)}_{name}"
                        )
                    )
        for name in self.scalar_names:
            initial = self.spec._tensor_state[name].initial
            slots[name] = [
                opt.add_variable(
                    (),
                    initializer=keras.initializers.Constant(initial),
                    dtype="float32",
                    name=f"{_sanitized(variable)}_{name}",
                )
                for variable in variables
            ]
        return slots

    def hyper(self, opt, lr, step, dtype, weight_decay):
        return dict(opt._hyper, lr=lr, weight_decay=weight_decay, decoupled_weight_decay=True)


class RAdamRule(TorchLayoutRule):
    folds_decay = True


class RpropRule(TorchLayoutRule):
    pass


class ASGDRule(TorchLayoutRule):
    pass


class AdafactorRule(TorchLayoutRule):
    keras_name = "Adafactor"
    defaults = {"epsilon_1": None}

    def __init__(self, row):
        super().__init__(row)
        self.state_shape = lambda name, shape: self.spec._state_shape(None, name, shape)

    def names(self, opt):
        return self.spec._state_names(None, {})

    def hyper(self, opt, lr, step, dtype, weight_decay):
        return dict(
            lr=lr,
            beta2_decay=opt.beta_2_decay,
            eps=(opt.epsilon_1, opt.epsilon_2),
            d=opt.clip_threshold,
            weight_decay=0.0,
            maximize=False,
        )


RULES = {
    "SGD": SGDRule,
    "Adam": AdamRule,
    "AdamW": AdamWRule,
    "Adagrad": AdagradRule,
    "RMSprop": RMSpropRule,
    "Adadelta": AdadeltaRule,
    "Adamax": AdamaxRule,
    "NAdam": NAdamRule,
    "Lion": LionRule,
    "LAMB": LAMBRule,
    "RAdam": RAdamRule,
    "Rprop": RpropRule,
    "ASGD": ASGDRule,
    "Adafactor": AdafactorRule,
}


def _sanitized(variable):
    return str(variable.name).replace("/", "_").replace(":", "_")


# --------------------------------------------------------------------- classes
def _keras_signature(cls, defaults):
    signature = inspect.signature(cls.__init__)
    return signature.replace(
        parameters=[
            p.replace(default=defaults[p.name]) if p.name in defaults else p
            for p in signature.parameters.values()
        ]
    )


def _cyoptim_signature(spec):
    """learning_rate, then the cyoptim class's hyperparameters (but its weight
    decay: Keras's own, decoupled, is a common argument; and its low-precision
    options), then Keras's common arguments."""
    own = inspect.signature(spec.__init__).parameters
    base = inspect.signature(keras.optimizers.Optimizer.__init__).parameters
    keyword = inspect.Parameter.POSITIONAL_OR_KEYWORD
    parameters = [
        own["self"],
        inspect.Parameter("learning_rate", keyword, default=own["lr"].default),
    ]
    parameters += [
        p.replace(kind=keyword)
        for name, p in own.items()
        if name
        not in ("self", "params", "lr", "weight_decay", "decoupled_weight_decay") + _PRECISION_ARGS
    ]
    parameters += [base[name].replace(kind=keyword) for name in _BASE_ARGS]
    parameters.append(base["kwargs"])
    return inspect.Signature(parameters)


def make_class(row, module):
    """The cyoptim.keras class of a registry row."""
    rule = RULES[row.name](row)
    spec = rule.spec
    namespace = {"_rule": rule, "__module__": module, "__qualname__": row.name}
    if rule.keras_name is not None:
        keras_class = getattr(keras.optimizers, rule.keras_name)
        bases = (Optimizer, keras_class)
        if rule.defaults:
            signature = _keras_signature(keras_class, rule.defaults)

            def __init__(self, *args, **kwargs):
                bound = signature.bind(self, *args, **kwargs)
                bound.apply_defaults()
                keras_class.__init__(*bound.args, **bound.kwargs)

            __init__.__signature__ = signature
            namespace["__init__"] = __init__
        origin = f"``keras.optimizers.{rule.keras_name}``"
    else:
        bases = (Optimizer,)
        signature = _cyoptim_signature(spec)
        own = [
            name
            for name in signature.parameters
            if name not in ("self", "learning_rate", "kwargs") + _BASE_ARGS
        ]
        default_lr = signature.parameters["learning_rate"].default

        def __init__(self, *args, **kwargs):
            bound = signature.bind(self, *args, **kwargs)
            bound.apply_defaults()
            options = dict(bound.arguments)
            options.pop("self")
            extra = options.pop("kwargs", {})
            hyper = {name: options.pop(name) for name in own}
            learning_rate = options["learning_rate"]
            # The cyoptim class checks them (torch's wording) and normalizes pairs.
            probe = spec(
                [np.zeros(1, np.float32)],
                lr=learning_rate if isinstance(learning_rate, float) else default_lr,
                **hyper,
            )
            Optimizer.__init__(self, **options, **extra)
            self._hyper = {name: probe.defaults[name] for name in own}

        def get_config(self):
            config = Optimizer.get_config(self)
            config.update({name: _plain(value) for name, value in self._hyper.items()})
            return config

        __init__.__signature__ = signature
        namespace["__init__"] = __init__
        namespace["get_config"] = get_config
        origin = f"``cyoptim.{row.name}`` (Keras has no {row.name})"
    if "__init__" in namespace:
        namespace["__init__"].__qualname__ = f"{row.name}.__init__"
    namespace["__doc__"] = _doc(row, rule, origin)
    cls = type(row.name, bases, namespace)
    return keras.saving.register_keras_serializable(package="cyoptim")(cls)


def _plain(value):
    return list(value) if isinstance(value, tuple) else value


def _doc(row, rule, origin):
    return (
        f"{row.name} for Keras 3 on the torch backend: {origin}'s arguments, one "
        f"cyoptim kernel call per group of variables, in place.\n\n"
        f"Update rule: {rule.follows}'s. {RULE_DOCS[row.name]}\n\n"
        f"See cyoptim.keras for what is supported."
    )


RULE_DOCS = {
    "SGD": """Keras's: ``v = momentum*v - lr*g; w += v`` (Nesterov:
``w += momentum*v - lr*g``), where torch keeps ``b = momentum*b + g`` and
steps ``w -= lr*b``: the same while the learning rate is constant, not when
a schedule changes it (Keras's velocity keeps the rates it was built with).
The optimizer variable ``momentum`` is Keras's velocity. With Nesterov, the
scaled gradients ``-lr*g`` are computed into new tensors first (one pass).""",
    "Adam": """Keras's: ``m = b1*m + (1-b1)*g``, ``v = b2*v + (1-b2)*g^2``,
``w -= lr*sqrt(1-b2^t)/(1-b1^t) * m / (sqrt(v) + epsilon)``: epsilon is added
to sqrt(v) before the bias correction (torch adds it after), computed with
the kernel's epsilon set to ``epsilon/sqrt(1-b2^t)`` at every step. AMSGrad
keeps the running maximum of v. Weight decay is Keras's (decoupled:
``w *= 1 - lr*weight_decay`` before the update), applied by the kernel in
the same pass.""",
    "AdamW": """Keras's, as Adam (epsilon added to sqrt(v) before the bias
correction), with Keras's decoupled weight decay (default 0.004)
``w *= 1 - lr*weight_decay``, applied by the kernel in the same pass.""",
    "Adagrad": """Keras's: ``acc += g^2; w -= lr*g / sqrt(acc + epsilon)``
(epsilon inside the square root; torch adds it outside). The kernel divides
by ``sqrt(s)`` with ``s = acc + epsilon``: the optimizer variable
``accumulator`` holds Keras's accumulator plus epsilon (epsilon is added
once, when the optimizer is built).""",
    "RMSprop": """torch's, which differs from Keras's in two places.
``v = rho*v + (1-rho)*g^2``; centered: ``a = rho*a + (1-rho)*g``, ``v - a^2``;
the denominator is ``sqrt(v) + epsilon`` where Keras's is ``sqrt(v + epsilon)``
(no hyperparameter of the kernel moves epsilon under the root: for v much
larger than epsilon the two agree, for small v Keras's steps are smaller).
With momentum, torch's buffer ``b = momentum*b + g/d`` steps ``w -= lr*b``,
Keras's holds ``lr*g/d``: the same while the learning rate is constant. The
optimizer variables are Keras's (``velocity``, ``momentum``,
``average_gradient``).""",
    "Adadelta": """Keras's, which is torch's: ``v = rho*v + (1-rho)*g^2``,
``d = sqrt(u + epsilon)/sqrt(v + epsilon) * g``, ``u = rho*u + (1-rho)*d^2``,
``w -= lr*d``.""",
    "Adamax": """torch's: ``u = max(b2*u, |g| + epsilon)`` and
``w -= lr/(1-b1^t) * m/u``; Keras keeps ``u = max(b2*u, |g|)`` and divides by
``u + epsilon``. The two differ by less than epsilon in the denominator
(epsilon*(1-b2^k) after k steps in which the decayed u won), which matters
only where |g| is of the order of epsilon (1e-7) or below. The optimizer
variables are Keras's (``momentum``, ``norm``).""",
    "NAdam": """Keras's ``Nadam``: ``mu_t = b1*(1 - 0.5*0.96^t)`` (torch's rule
with ``momentum_decay=1``), their product kept in Keras's one ``u_product``
variable; ``m_hat = mu_{t+1}*m/(1 - prod mu_{1..t+1}) + (1-mu_t)*g/(1 - prod
mu_{1..t})``, ``w -= lr*m_hat/(sqrt(v/(1-b2^t)) + epsilon)``. Weight decay is
Keras's (decoupled), applied by the kernel.""",
    "Lion": """Keras's, which is cyoptim's: ``w -= lr*sign(b1*m + (1-b1)*g)``,
``m = b2*m + (1-b2)*g``; weight decay (decoupled) applied by the kernel in
the same pass.""",
    "LAMB": """Keras's ``Lamb``, which is cyoptim's without weight decay:
``u = (m/(1-b1^t)) / (sqrt(v/(1-b2^t)) + epsilon)``, trust ratio
``||w||/||u||`` per variable (1 when either is 0), ``w -= lr*ratio*u``.
Weight decay is Keras's, applied before the update (so the trust ratio sees
the decayed weights), as Keras does; cyoptim.LAMB adds ``wd*w`` to u
instead.""",
    "RAdam": """torch's (``cyoptim.RAdam``): the rectified update when
``rho_t > 5``, momentum SGD with bias correction before. The arguments are
cyoptim's (``betas``, ``eps``, ``maximize``); weight decay is Keras's
decoupled one, applied by the kernel.""",
    "Rprop": """torch's (``cyoptim.Rprop``): per-element step sizes grown by
``etas[1]`` while the gradient keeps its sign and shrunk by ``etas[0]`` when
it flips, clamped to ``step_sizes``; ``learning_rate`` is only the initial
step size. Weight decay is Keras's, a pass before the update.""",
    "ASGD": """torch's (``cyoptim.ASGD``): SGD with the decaying rate
``eta_t = lr/(1 + lambd*lr*t)^alpha`` and the average of the iterates from
step ``t0`` on in the optimizer variable ``ax`` (``eta`` and ``mu`` are
optimizer variables too). Weight decay is Keras's, a pass before the update.""",
    "Adafactor": """torch's, with Keras's argument names (``beta_2_decay``,
``epsilon_2``, ``clip_threshold``; ``epsilon_1`` is torch's eps1). The two
agree but for epsilon_1: Keras adds it to g^2 (default 1e-30), torch floors
the row factors' mean and v with it (default None: the dtype's machine
epsilon; a floor of 1e-30 would vanish in float32 and let a zero gradient
row give NaN). ``relative_step`` is accepted and, as in Keras, changes
nothing: rho_t = min(lr, 1/sqrt(t)) either way. The optimizer variables are
torch's state: ``row_var`` and ``col_var`` for variables of two or more
dimensions, ``variance`` for the others. Weight decay is Keras's, a pass
before the update (so the weights' RMS is taken after it, as in Keras).""",
}
