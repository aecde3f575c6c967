"""L-BFGS driven by a closure, as torch.optim.LBFGS (torch 2.13).

The algorithm (``lbfgs_step``, ``strong_wolfe``) is torch's, line by line,
over the flat vector of all params; it is shared by :class:`LBFGS` (NumPy
arrays, a closure returning ``(loss, grads)``) and ``cyoptim.torch.LBFGS``
(tensors, torch's closure). Scalars keep torch's types: what torch holds as a
0-d tensor of the params' dtype (``gtd``, ``ys``, ``ro``, ``H_diag``, the
first step length) is a NumPy scalar of that dtype here, what torch holds as a
Python float (the loss, ``lr``) is a Python float, and NumPy's promotion rules
(NEP 50) then round mixed expressions where torch's do: in float32, a Python
float meets a float32 value as a float32.
"""

import math
import numbers

import numpy as np

from .. import _threads
from ..optimizer import Optimizer, _describe

LINE_SEARCH_FNS = (None, "strong_wolfe")
# Entries of the state that a step writes after its first iteration (torch's
# names); func_evals and n_iter exist from the first step on, al from the
# first two-loop recursion on.
LOOP_STATE = ("d", "t", "old_dirs", "old_stps", "ro", "H_diag", "prev_flat_grad", "prev_loss")


class VectorOps:
    """The vector work of a step on flat vectors of one dtype: cyoptim's
    kernels (pyx/lbfgs.pxi, pyx/reductions.pxi), deterministic for any thread
    count. Dot products and sums are computed in double and rounded to the
    dtype once; torch's (MKL's) sum in an order of their own."""

    def __init__(self, kernels, dtype, n_threads):
        self.kernels, self.scalar, self.n_threads = kernels, np.dtype(dtype).type, n_threads

    def dot(self, x, y):
        return self.scalar(self.kernels.vector_dot(x, y, self.n_threads))

    def axpy_(self, out, alpha, x):
        """out += alpha * x, one rounding per element (torch's add_(x, alpha=alpha))."""
        self.kernels.vector_axpy_(out, x, float(alpha), self.n_threads)

    def max_abs(self, x):
        return self.scalar(self.kernels.grad_norms([x], math.inf, self.n_threads)[0])

    def sum_abs(self, x):
        return self.scalar(self.kernels.grad_norms([x], 1.0, self.n_threads)[0])


def cubic_interpolate(x1, f1, g1, x2, f2, g2, bounds=None):
    """torch.optim.lbfgs._cubic_interpolate (minFunc's polyinterp)."""
    if bounds is not None:
        xmin_bound, xmax_bound = bounds
    else:
        xmin_bound, xmax_bound = (x1, x2) if x1 <= x2 else (x2, x1)
    d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    d2_square = d1**2 - g1 * g2
    if d2_square >= 0:
        d2 = np.sqrt(d2_square)
        if x1 <= x2:
            min_pos = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
        else:
            min_pos = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
        return min(max(min_pos, xmin_bound), xmax_bound)
    return (xmin_bound + xmax_bound) / 2.0


def strong_wolfe(
    obj_func, ops, x, t, d, f, g, gtd, c1=1e-4, c2=0.9, tolerance_change=1e-9, max_ls=25
):
    """torch.optim.lbfgs._strong_wolfe: a line search for a step length t along
    d satisfying the strong Wolfe conditions (bracketing, then zoom by cubic
    interpolation). Returns (f_new, g_new, t, function evaluations)."""
    d_norm = ops.max_abs(d)
    g = g.copy()
    f_new, g_new = obj_func(x, t, d)
    ls_func_evals = 1
    gtd_new = ops.dot(g_new, d)

    t_prev, f_prev, g_prev, gtd_prev = 0, f, g, gtd
    done = False
    ls_iter = 0
    while ls_iter < max_ls:
        if f_new > (f + c1 * t * gtd) or (ls_iter > 1 and f_new >= f_prev):
            bracket, bracket_f = [t_prev, t], [f_prev, f_new]
            bracket_g, bracket_gtd = [g_prev, g_new.copy()], [gtd_prev, gtd_new]
            break
        if abs(gtd_new) <= -c2 * gtd:
            bracket, bracket_f, bracket_g = [t], [f_new], [g_new]
            done = True
            break
        if gtd_new >= 0:
            bracket, bracket_f = [t_prev, t], [f_prev, f_new]
            bracket_g, bracket_gtd = [g_prev, g_new.copy()], [gtd_prev, gtd_new]
            break
        min_step = t + 0.01 * (t - t_prev)
        max_step = t * 10
        tmp = t
        t = cubic_interpolate(
            t_prev, f_prev, gtd_prev, t, f_new, gtd_new, bounds=(min_step, max_step)
        )
        t_prev, f_prev, g_prev, gtd_prev = tmp, f_new, g_new.copy(), gtd_new
        f_new, g_new = obj_func(x, t, d)
        ls_func_evals += 1
        gtd_new = ops.dot(g_new, d)
        ls_iter += 1

    if ls_iter == max_ls:
        bracket, bracket_f, bracket_g = [0, t], [f, f_new], [g, g_new]

    insuf_progress = False
    low_pos, high_pos = (0, 1) if bracket_f[0] <= bracket_f[-1] else (1, 0)
    while not done and ls_iter < max_ls:
        if abs(bracket[1] - bracket[0]) * d_norm < tolerance_change:
            break
        t = cubic_interpolate(
            bracket[0], bracket_f[0], bracket_gtd[0], bracket[1], bracket_f[1], bracket_gtd[1]
        )
        # Too close to an end of the bracket: move 0.1 of its length inside.
        eps = 0.1 * (max(bracket) - min(bracket))
        if min(max(bracket) - t, t - min(bracket)) < eps:
            if insuf_progress or t >= max(bracket) or t <= min(bracket):
                if abs(t - max(bracket)) < abs(t - min(bracket)):
                    t = max(bracket) - eps
                else:
                    t = min(bracket) + eps
                insuf_progress = False
            else:
                insuf_progress = True
        else:
            insuf_progress = False

        f_new, g_new = obj_func(x, t, d)
        ls_func_evals += 1
        gtd_new = ops.dot(g_new, d)
        ls_iter += 1

        if f_new > (f + c1 * t * gtd) or f_new >= bracket_f[low_pos]:
            bracket[high_pos], bracket_f[high_pos] = t, f_new
            bracket_g[high_pos], bracket_gtd[high_pos] = g_new.copy(), gtd_new
            low_pos, high_pos = (0, 1) if bracket_f[0] <= bracket_f[1] else (1, 0)
        else:
            if abs(gtd_new) <= -c2 * gtd:
                done = True
            elif gtd_new * (bracket[high_pos] - bracket[low_pos]) >= 0:
                bracket[high_pos], bracket_f[high_pos] = bracket[low_pos], bracket_f[low_pos]
                bracket_g[high_pos] = bracket_g[low_pos]
                bracket_gtd[high_pos] = bracket_gtd[low_pos]
            bracket[low_pos], bracket_f[low_pos] = t, f_new
            bracket_g[low_pos], bracket_gtd[low_pos] = g_new.copy(), gtd_new

    return bracket_f[low_pos], bracket_g[low_pos], bracket[low_pos], ls_func_evals


def lbfgs_step(group, state, problem, ops):
    """One ``step(closure)`` of torch.optim.LBFGS, in torch's order of operations.

    group: the param group (lr, max_iter, ...). state: the state in torch's
    layout, updated in place (lists of flat arrays, scalars as described in
    the module docstring). problem: ``evaluate()`` -> (closure's loss, loss
    as a float, flat grad), ``add_grad(t, d)``, ``clone_params()``,
    ``set_params(x)``. Returns the loss of the first evaluation.
    """
    lr = group["lr"]
    max_iter, max_eval = group["max_iter"], group["max_eval"]
    tolerance_grad, tolerance_change = group["tolerance_grad"], group["tolerance_change"]
    line_search_fn, history_size = group["line_search_fn"], group["history_size"]

    state.setdefault("func_evals", 0)
    state.setdefault("n_iter", 0)

    orig_loss, loss, flat_grad = problem.evaluate()
    current_evals = 1
    state["func_evals"] += 1

    opt_cond = ops.max_abs(flat_grad) <= tolerance_grad
    if opt_cond:
        return orig_loss

    d, t = state.get("d"), state.get("t")
    old_dirs, old_stps, ro = state.get("old_dirs"), state.get("old_stps"), state.get("ro")
    H_diag, prev_flat_grad = state.get("H_diag"), state.get("prev_flat_grad")
    prev_loss = state.get("prev_loss")

    n_iter = 0
    while n_iter < max_iter:
        n_iter += 1
        state["n_iter"] += 1

        # The descent direction.
        if state["n_iter"] == 1:
            d = -flat_grad
            old_dirs, old_stps, ro = [], [], []
            H_diag = 1
        else:
            y = flat_grad - prev_flat_grad
            s = d * t
            ys = ops.dot(y, s)
            if ys > 1e-10:
                if len(old_dirs) == history_size:
                    old_dirs.pop(0)
                    old_stps.pop(0)
                    ro.pop(0)
                old_dirs.append(y)
                old_stps.append(s)
                ro.append(1.0 / ys)
                H_diag = ys / ops.dot(y, y)

            # Two-loop recursion: d = -H g.
            num_old = len(old_dirs)
            if "al" not in state:
                state["al"] = [None] * history_size
            al = state["al"]
            q = -flat_grad
            for i in range(num_old - 1, -1, -1):
                al[i] = ops.dot(old_stps[i], q) * ro[i]
                ops.axpy_(q, -al[i], old_dirs[i])
            d = r = q * H_diag
            for i in range(num_old):
                be_i = ops.dot(old_dirs[i], r) * ro[i]
                ops.axpy_(r, al[i] - be_i, old_stps[i])

        if prev_flat_grad is None:
            prev_flat_grad = flat_grad.copy()
        else:
            np.copyto(prev_flat_grad, flat_grad)
        prev_loss = loss

        # The step length.
        if state["n_iter"] == 1:
            t = min(1.0, 1.0 / ops.sum_abs(flat_grad)) * lr
        else:
            t = lr

        gtd = ops.dot(flat_grad, d)
        if gtd > -tolerance_change:
            break

        ls_func_evals = 0
        if line_search_fn is not None:
            x_init = problem.clone_params()

            def obj_func(x, t, d):
                problem.add_grad(t, d)
                _, f, g = problem.evaluate()
                problem.set_params(x)
                return f, g

            loss, flat_grad, t, ls_func_evals = strong_wolfe(
                obj_func, ops, x_init, t, d, loss, flat_grad, gtd, max_ls=max_eval - current_evals
            )
            problem.add_grad(t, d)
            opt_cond = ops.max_abs(flat_grad) <= tolerance_grad
        else:
            problem.add_grad(t, d)
            if n_iter != max_iter:
                # Not after the last iteration: the next step evaluates anyway.
                _, loss, flat_grad = problem.evaluate()
                opt_cond = ops.max_abs(flat_grad) <= tolerance_grad
                ls_func_evals = 1

        current_evals += ls_func_evals
        state["func_evals"] += ls_func_evals

        if n_iter == max_iter:
            break
        if current_evals >= max_eval:
            break
        if opt_cond:
            break
        if ops.max_abs(d * t) <= tolerance_change:
            break
        if abs(loss - prev_loss) < tolerance_change:
            break

    state["d"], state["t"] = d, t
    state["old_dirs"], state["old_stps"], state["ro"] = old_dirs, old_stps, ro
    state["H_diag"], state["prev_flat_grad"], state["prev_loss"] = (
        H_diag,
        prev_flat_grad,
        prev_loss,
    )
    return orig_loss


def _integer(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def validate_hyperparameters(group):
    """torch's check of lr (its wording), and what torch only finds out at a step
    (or never): the other settings."""
    lr = group["lr"]
    if not isinstance(lr, numbers.Real) or isinstance(lr, bool):
        raise TypeError(f"lr must be a real number, got {type(lr).__name__}")
    if not 0.0 <= lr:
        raise ValueError(f"Invalid learning rate: {lr}")
    for name in ("max_iter", "max_eval", "history_size"):
        if not _integer(group[name]) or group[name] < 1:
            raise ValueError(f"{name} must be a positive integer, got {group[name]!r}")
    for name in ("tolerance_grad", "tolerance_change"):
        if not isinstance(group[name], numbers.Real) or isinstance(group[name], bool):
            raise ValueError(f"{name} must be a real number, got {group[name]!r}")
    if group["line_search_fn"] not in LINE_SEARCH_FNS:
        raise ValueError(
            f"line_search_fn must be None or 'strong_wolfe' (torch: only "
            f"'strong_wolfe' is supported), got {group['line_search_fn']!r}"
        )


class _ArrayProblem:
    """The params of an LBFGS and its closure, as lbfgs_step sees them."""

    def __init__(self, opt, closure):
        self.params, self.closure = opt.param_groups[0]["params"], closure
        self.dtype = opt._dtype
        self.ops = opt._ops()

    def evaluate(self):
        result = self.closure()
        if not isinstance(result, tuple) or len(result) != 2:
            raise TypeError(
                f"LBFGS: the closure must return (loss, grads), got {type(result).__name__}"
            )
        orig_loss, grads = result
        if isinstance(grads, np.ndarray) or not hasattr(grads, "__len__"):
            raise TypeError(
                f"LBFGS: the closure's grads must be a list with one array (or "
                f"None) per param, got {type(grads).__name__}"
            )
        if len(grads) != len(self.params):
            raise ValueError(
                f"LBFGS: the closure returned {len(grads)} grads for {len(self.params)} params"
            )
        for k, (g, p) in enumerate(zip(grads, self.params)):
            if g is not None and (
                not isinstance(g, np.ndarray) or g.shape != p.shape or g.dtype != p.dtype
            ):
                raise TypeError(
                    f"LBFGS: grad {k} is an {_describe(g)}; param {k} is an "
                    f"{_describe(p)}: they must match"
                )
        flat = (
            np.concatenate(
                [
                    np.zeros(p.size, p.dtype) if g is None else g.reshape(-1)
                    for g, p in zip(grads, self.params)
                ]
            )
            if grads
            else np.zeros(0, self.dtype)
        )
        return orig_loss, float(orig_loss), flat

    def add_grad(self, t, d):
        offset = 0
        for p in self.params:
            self.ops.axpy_(p.reshape(-1), t, d[offset : offset + p.size])
            offset += p.size

    def clone_params(self):
        return [p.copy() for p in self.params]

    def set_params(self, x):
        for p, value in zip(self.params, x):
            np.copyto(p, value)


class LBFGS(Optimizer):
    r"""L-BFGS (Liu and Nocedal, 1989), as ``torch.optim.LBFGS`` (torch 2.13),
    driven by a closure that returns ``(loss, grads)``.

    One ``step(closure)`` runs up to ``max_iter`` iterations over the flat
    vector :math:`x` of all params, :math:`g = \nabla f(x)`. With the last
    ``history_size`` pairs :math:`s_i = x_{i+1} - x_i`, :math:`y_i = g_{i+1}
    - g_i` (a pair is kept only when :math:`y^\top s > 10^{-10}`),
    :math:`\rho_i = 1 / y_i^\top s_i` and :math:`\gamma = y^\top s / y^\top y`
    of the newest pair, the direction is :math:`d = -H g` by the two-loop
    recursion:

    .. math::
        q &= -g; \quad \alpha_i = \rho_i\, s_i^\top q,\ q \mathrel{-}= \alpha_i y_i
            \quad (i = k-1, \dots, 0) \\
        r &= \gamma q; \quad \beta_i = \rho_i\, y_i^\top r,\ r \mathrel{+}= (\alpha_i - \beta_i) s_i
            \quad (i = 0, \dots, k-1); \quad d = r

    (:math:`d = -g` at the very first iteration). The step is :math:`x
    \leftarrow x + t d` with :math:`t` = ``lr`` (the first iteration of all:
    :math:`\min(1, 1/\|g\|_1)\,` ``lr``), or, with
    ``line_search_fn="strong_wolfe"``, the :math:`t` of a line search
    satisfying the strong Wolfe conditions (:math:`c_1 = 10^{-4}`,
    :math:`c_2 = 0.9`, cubic interpolation, at most ``max_eval`` evaluations
    per step). A step stops early when :math:`\max|g| \le`
    ``tolerance_grad``, when :math:`g^\top d > -`\ ``tolerance_change``, when
    :math:`\max|t d|` or the change of the loss falls below
    ``tolerance_change``, or after ``max_eval`` evaluations.

    The closure computes the loss and its gradient at the params' current
    values, which the step changes in place between calls::

        def closure():
            loss, grads = loss_and_grads(params)   # grads: one array per param, in order
            return loss, grads
        opt.step(closure)                           # returns the first call's loss

    A grad may be None (zero, as a tensor without ``.grad`` in torch).

    How it is computed: torch's algorithm, statement by statement, on the
    concatenated grad vector; the param updates and the axpy of the
    recursion are fused multiply-adds (as torch's ``add_(x, alpha=a)``), and
    dot products and sums are computed in double and rounded to the params'
    dtype once, deterministically for any thread count (pyx/lbfgs.pxi).
    torch's dot products (MKL) sum in another order: in float64 the two
    agree to the last bit or so at each product, in float32 to float32
    rounding; tests/test_lbfgs.py measures the difference after whole runs.

    Args:
        params: arrays (float32 or float64, one dtype), or a list with one
            dict (LBFGS takes one param group, as torch's).
        lr (float): learning rate (default 1).
        max_iter (int): iterations per step (default 20).
        max_eval (int): closure evaluations per step (default ``max_iter * 5 // 4``).
        tolerance_grad (float): stop when the largest absolute grad is at
            most this (default 1e-7).
        tolerance_change (float): stop when the step or the change of the
            loss is smaller (default 1e-9).
        history_size (int): pairs kept (default 100).
        line_search_fn (str or None): ``None`` or ``"strong_wolfe"``.

    State (``state[0]``, torch's names; arrays are flat vectors of all params):
    ``func_evals``, ``n_iter`` (counts over all steps); after a step that
    iterated: ``d`` (the last direction), ``t`` (the last step length),
    ``old_dirs`` and ``old_stps`` (the :math:`y_i` and :math:`s_i`, one row
    each: arrays of shape (k, n) where torch keeps lists), ``ro`` (k
    values), ``H_diag``, ``prev_flat_grad``, ``prev_loss``, and ``al`` (the
    recursion's scratch, ``history_size`` values, NaN for the unused ones
    where torch keeps None). Its memory is ``2 * history_size + 3`` flat
    vectors at most, as torch's.

    Example:
        >>> import numpy as np, cyoptim
        >>> x = np.array([-1.5, 2.0])
        >>> def rosenbrock():
        ...     a, b = x
        ...     loss = (1 - a) ** 2 + 100 * (b - a * a) ** 2
        ...     grad = np.array([-2 * (1 - a) - 400 * a * (b - a * a), 200 * (b - a * a)])
        ...     return loss, [grad]
        >>> opt = cyoptim.LBFGS([x], line_search_fn="strong_wolfe")
        >>> for _ in range(5):
        ...     _ = opt.step(rosenbrock)
        >>> np.round(x, 4)
        array([1., 1.])

    Bad input: hyperparameters torch refuses, with torch's wording, and what
    torch only trips over at a step or never (``line_search_fn`` other than
    None and "strong_wolfe", ``max_iter``, ``max_eval`` or ``history_size``
    below 1) are refused by the constructor; more than one param group is
    refused as torch refuses it. A closure that returns something other than
    ``(loss, grads)``, or grads that do not match the params (count, shape,
    dtype), raise; the params and the state are then restored to what they
    were before the step.

    References: Nocedal and Wright, "Numerical Optimization", ch. 7 and 3.5;
    minFunc (M. Schmidt), which torch's implementation follows.
    """

    _exports_step = False

    def __init__(
        self,
        params,
        lr=1,
        max_iter=20,
        max_eval=None,
        tolerance_grad=1e-7,
        tolerance_change=1e-9,
        history_size=100,
        line_search_fn=None,
    ):
        if max_eval is None and _integer(max_iter):
            max_eval = max_iter * 5 // 4
        super().__init__(
            params,
            dict(
                lr=lr,
                max_iter=max_iter,
                max_eval=max_eval,
                tolerance_grad=tolerance_grad,
                tolerance_change=tolerance_change,
                history_size=history_size,
                line_search_fn=line_search_fn,
            ),
        )
        self._lbfgs = {}

    def add_param_group(self, param_group):
        if self.param_groups:
            raise ValueError("LBFGS doesn't support per-parameter options (parameter groups)")
        super().add_param_group(param_group)

    @property
    def _dtype(self):
        params = self.param_groups[0]["params"]
        return params[0].dtype if params else np.dtype(np.float64)

    @property
    def _n(self):
        return sum(p.size for p in self.param_groups[0]["params"])

    def _ops(self):
        return VectorOps(self._kernels, self._dtype, _threads._requested)

    def _validate_hyperparameters(self, group):
        validate_hyperparameters(group)

    # ------------------------------------------------------------------ step
    def step(self, closure):
        """Run one L-BFGS step (up to ``max_iter`` iterations); return the
        loss of the closure's first call.

        closure: a callable taking no arguments and returning ``(loss,
        grads)`` at the params' current values (grads: one array or None per
        param, in order).
        """
        if not callable(closure):
            raise TypeError(
                f"LBFGS.step needs a closure returning (loss, grads), got {type(closure).__name__}"
            )
        problem = _ArrayProblem(self, closure)
        saved_params = problem.clone_params()
        saved_state = _copy_state(self._lbfgs)
        try:
            with np.errstate(all="ignore"):  # inf and NaN propagate, as in torch
                return lbfgs_step(self.param_groups[0], self._lbfgs, problem, problem.ops)
        except BaseException:
            problem.set_params(saved_params)
            self._lbfgs = saved_state
            raise

    # ------------------------------------------------------------------ state
    @property
    def state(self):
        """{0: the state} once a step ran (torch keeps it under the first param),
        in the layout of state_dict: arrays and numbers (see the class docstring)."""
        s = self._lbfgs
        if not s:
            return {}
        entry = {"func_evals": int(s["func_evals"]), "n_iter": int(s["n_iter"])}
        if "d" in s:
            dtype, n = self._dtype, self._n
            entry.update(
                d=s["d"],
                t=float(s["t"]),
                old_dirs=np.array(s["old_dirs"], dtype).reshape(-1, n),
                old_stps=np.array(s["old_stps"], dtype).reshape(-1, n),
                ro=np.array(s["ro"], dtype),
                H_diag=float(s["H_diag"]),
                prev_flat_grad=s["prev_flat_grad"],
                prev_loss=float(s["prev_loss"]),
            )
        if "al" in s:
            entry["al"] = np.array([np.nan if v is None else v for v in s["al"]], self._dtype)
        return {0: entry}

    def load_state_dict(self, state_dict):
        """Restore a state_dict; refuse one that does not fit and change nothing then."""
        new_groups, per_param = self._check_state_dict(state_dict)
        self.param_groups[0].update(new_groups[0])
        entry = per_param[0].get(0)
        self._lbfgs = {} if entry is None else self._internal_state(entry)

    def _internal_state(self, entry):
        """The state in torch's layout (lists) from a checked state_dict entry."""
        scalar = np.dtype(self._dtype).type
        s = {"func_evals": int(entry["func_evals"]), "n_iter": int(entry["n_iter"])}
        if "d" in entry:
            s.update(
                d=entry["d"].copy(),
                t=scalar(entry["t"]),
                old_dirs=[row.copy() for row in entry["old_dirs"]],
                old_stps=[row.copy() for row in entry["old_stps"]],
                ro=[scalar(v) for v in entry["ro"]],
                H_diag=scalar(entry["H_diag"]),
                prev_flat_grad=entry["prev_flat_grad"].copy(),
                prev_loss=float(entry["prev_loss"]),
            )
        if "al" in entry:
            s["al"] = [None if v != v else scalar(v) for v in entry["al"]]
        return s

    def _check_param_state(self, entry, index, group, param, storage=None):
        if index != 0:
            raise ValueError(
                f"LBFGS keeps its state under param 0 (as torch does), "
                f"found an entry for param {index}"
            )
        if not isinstance(entry, dict):
            raise ValueError("state of param 0 must be a dict")
        required = {"func_evals", "n_iter"}
        if "d" in entry:
            required |= set(LOOP_STATE)
        allowed = required | set(LOOP_STATE) | {"al"}
        if not required <= set(entry) <= allowed:
            raise ValueError(
                f"LBFGS state has keys {sorted(entry)}; expected {sorted(required)}"
                f" and any of {sorted(allowed - required)} (all of {list(LOOP_STATE)}"
                f" together)"
            )
        for name in ("func_evals", "n_iter"):
            value = entry[name]
            if not _integer(value) or value < 0:
                raise ValueError(
                    f"LBFGS state {name!r} must be a non-negative integer, got {value!r}"
                )
        dtype, n, history = self._dtype, self._n, group["history_size"]
        k = None
        shapes = {"d": (n,), "prev_flat_grad": (n,), "al": (history,)}
        if "d" in entry:
            rows = entry["old_dirs"]
            k = rows.shape[0] if isinstance(rows, np.ndarray) and rows.ndim == 2 else -1
            if not 0 <= k <= history:
                raise ValueError(
                    f"LBFGS state 'old_dirs' must be an array of shape (k, {n}) "
                    f"with k <= history_size ({history}), got {_describe(rows)}"
                )
            shapes.update(old_dirs=(k, n), old_stps=(k, n), ro=(k,))
            for name in ("t", "H_diag", "prev_loss"):
                value = entry[name]
                if isinstance(value, bool) or not isinstance(value, (numbers.Real, np.floating)):
                    raise ValueError(f"LBFGS state {name!r} must be a number, got {value!r}")
        for name, shape in shapes.items():
            if name in entry:
                value = entry[name]
                if (
                    not isinstance(value, np.ndarray)
                    or value.shape != shape
                    or value.dtype != dtype
                ):
                    raise ValueError(
                        f"LBFGS state {name!r} is an {_describe(value)}; "
                        f"expected an array of dtype {dtype} and shape {shape}"
                    )
        return entry

    def _ensure_blocks(self, group, plan, blocks, also=()):
        """LBFGS keeps no per-param blocks (its state is over the flat vector)."""

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("_lbfgs", None)  # in its state_dict
        return state

    def __setstate__(self, state):
        self._lbfgs = {}
        super().__setstate__(state)


def _copy_state(state):
    """A copy of the state that a step may change in place (lists and arrays)."""
    copy = dict(state)
    for name in ("old_dirs", "old_stps", "ro", "al"):
        if name in copy:
            copy[name] = list(copy[name])
    if copy.get("prev_flat_grad") is not None:
        copy["prev_flat_grad"] = copy["prev_flat_grad"].copy()
    return copy
