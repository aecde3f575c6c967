"""Command line: ``python -m cyoptim {demo, lr-find, lr-search, bench} ...``.

- ``demo``: train a small MLP on the 8x8 digits with every optimizer and
  compare them (:func:`cyoptim.demo.run_demo`).
- ``lr-find``: LR range test of one optimizer (:func:`cyoptim.demo.run_lr_find`).
- ``lr-search``: grid or random search of one optimizer's learning rate on a
  validation split (:func:`cyoptim.demo.run_lr_search`).
- ``bench``: the benchmarks; everything after ``bench`` goes to
  ``cyoptim.bench.main(argv)``.

The demo and the bench module are imported only by the subcommand that needs
them, and the demo's optional dependencies (matplotlib, tqdm, scikit-learn,
threadpoolctl) only when it uses them.
"""

import argparse
import os
import sys

from ._cli import HelpFormatter, int_at_least, positive_float, unit_interval
from .search import DEFAULT_LR_RANGE, ResultsFileError


def _optimizer_list(text):
    """An argparse type: comma-separated names of the demo's optimizers."""
    from .examples.optimizers import BY_KEY

    names = [name.strip().lower() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in BY_KEY]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown optimizer(s) {', '.join(unknown) or repr(text)}; choose from "
            + ", ".join(BY_KEY)
        )
    return names


def _rate_list(text):
    """An argparse type: comma-separated learning rates, each a finite number > 0."""
    rates = [positive_float(part.strip()) for part in text.split(",") if part.strip()]
    if not rates:
        raise argparse.ArgumentTypeError(f"expected comma-separated rates, got {text!r}")
    return rates


def build_parser():
    """The argparse parser of ``python -m cyoptim``."""
    from .demo import DEFAULT_BATCH_SIZE, DEFAULT_EPOCHS, DEFAULT_OUT, DEFAULT_PATIENCE, SCHEDULES
    from .examples.optimizers import BY_KEY
    from .lr_finder import min_meaningful_iters
    from .search import DEFAULT_TRIALS

    parser = argparse.ArgumentParser(
        prog="python -m cyoptim",
        formatter_class=HelpFormatter,
        description="cyoptim: fast CPU neural-network optimizers for NumPy arrays.",
    )
    commands = parser.add_subparsers(dest="command", metavar="{demo,lr-find,lr-search,bench}")
    commands.required = True

    demo = commands.add_parser(
        "demo",
        formatter_class=HelpFormatter,
        help="train an MLP on the 8x8 digits with every optimizer and compare",
        description="Train a 64-128-64-10 MLP on scikit-learn's 8x8 digits with each "
        "optimizer (same initial weights, same batch order), print a table "
        "and write results.json and demo.png.",
    )
    demo.add_argument(
        "--optimizers",
        type=_optimizer_list,
        default=None,
        help="comma-separated, e.g. adam,sgd,momentum (default: all)",
    )
    demo.add_argument(
        "--epochs",
        type=int_at_least(1),
        default=DEFAULT_EPOCHS,
        help="passes over the training set (default %(default)s)",
    )
    demo.add_argument(
        "--batch-size",
        type=int_at_least(1),
        default=DEFAULT_BATCH_SIZE,
        help="minibatch size (default %(default)s)",
    )
    demo.add_argument(
        "--schedule",
        choices=("none", *SCHEDULES),
        default="none",
        help="LR schedule stepped every batch (default %(default)s)",
    )
    demo.add_argument(
        "--seed",
        type=int_at_least(0),
        default=0,
        help="fixes split, initial weights, batch order (default %(default)s)",
    )
    demo.add_argument(
        "--threads",
        type=int_at_least(0),
        default=None,
        help="kernel threads (default: OpenMP's maximum; 0 means the same)",
    )
    demo.add_argument("--out", default=DEFAULT_OUT, help="output directory (default %(default)s)")
    demo.add_argument(
        "--ema",
        type=unit_interval,
        default=None,
        metavar="DECAY",
        help="also keep an EMA of the weights with this decay (e.g. 0.99; "
        "cyoptim.AveragedParams) and report its test accuracy",
    )
    demo.add_argument(
        "--no-progress",
        dest="progress",
        action="store_false",
        help="no progress bar and per-optimizer lines",
    )
    demo.add_argument(
        "--framework",
        choices=("numpy", "torch", "keras"),
        default="numpy",
        help="numpy: cyoptim's NumPy MLP; torch: the same MLP in PyTorch, "
        "cyoptim.torch beside torch.optim (needs torch); keras: the same "
        "MLP in Keras 3 (torch backend), cyoptim.keras beside "
        "keras.optimizers, SGD, RMSprop, Adam and AdamW unless "
        "--optimizers names others (needs keras) (default %(default)s)",
    )

    lr_find = commands.add_parser(
        "lr-find",
        formatter_class=HelpFormatter,
        help="LR range test of one optimizer on the digits MLP",
        description="Raise the learning rate exponentially over a short run and plot "
        "the loss; writes lr_find.png with the suggested learning rate.",
    )
    lr_find.add_argument(
        "--optimizer",
        default="adam",
        type=str.lower,
        choices=list(BY_KEY),
        metavar="NAME",
        help="one of " + ", ".join(BY_KEY) + " (default %(default)s)",
    )
    lr_find.add_argument(
        "--start-lr",
        type=positive_float,
        default=1e-6,
        help="first learning rate (default %(default)s)",
    )
    lr_find.add_argument(
        "--end-lr",
        type=positive_float,
        default=10.0,
        help="last learning rate (default %(default)s)",
    )
    lr_find.add_argument(
        "--num-iter",
        type=int_at_least(2),
        default=100,
        help=f"steps of the test; fewer than {min_meaningful_iters()} give a "
        f"warning: too few for a meaningful suggestion (default "
        f"%(default)s)",
    )
    lr_find.add_argument(
        "--seed",
        type=int_at_least(0),
        default=0,
        help="fixes the initial weights and batch order (default %(default)s)",
    )
    lr_find.add_argument(
        "--out", default=DEFAULT_OUT, help="output directory (default %(default)s)"
    )

    lr_search = commands.add_parser(
        "lr-search",
        formatter_class=HelpFormatter,
        help="grid or random search of one optimizer's learning rate on the digits MLP",
        description="Train the digits MLP once per learning rate, from the same initial "
        "weights, with early stopping on a validation split carved from the "
        "training rows (never the test set); print every trial, mark the best, "
        "and write lr_search.json (rerun to resume) and lr_search.png "
        "(validation accuracy against the rate, with the LR range test's "
        "suggestion).",
    )
    lr_search.add_argument(
        "--optimizer",
        default="adam",
        type=str.lower,
        choices=list(BY_KEY),
        metavar="NAME",
        help="one of " + ", ".join(BY_KEY) + " (default %(default)s)",
    )
    lr_search.add_argument(
        "--mode",
        choices=("grid", "random"),
        default="grid",
        help="grid: --lrs, or --trials rates evenly spaced in log scale "
        "from --min-lr to --max-lr; random: --trials rates drawn "
        "log-uniformly from that range (default %(default)s)",
    )
    lr_search.add_argument(
        "--trials",
        type=int_at_least(1),
        default=None,
        help=f"number of rates (default: as many as --lrs, else {DEFAULT_TRIALS})",
    )
    lr_search.add_argument(
        "--lrs",
        type=_rate_list,
        default=None,
        help="comma-separated rates of a grid, e.g. 1e-4,1e-3,1e-2",
    )
    lr_search.add_argument(
        "--min-lr",
        type=positive_float,
        default=None,
        help=f"low end of the range (default {DEFAULT_LR_RANGE[0]:g})",
    )
    lr_search.add_argument(
        "--max-lr",
        type=positive_float,
        default=None,
        help=f"high end of the range (default {DEFAULT_LR_RANGE[1]:g})",
    )
    lr_search.add_argument(
        "--max-epochs",
        type=int_at_least(1),
        default=DEFAULT_EPOCHS,
        help="cap on the epochs of a trial (default %(default)s)",
    )
    lr_search.add_argument(
        "--patience",
        type=int_at_least(0),
        default=DEFAULT_PATIENCE,
        help="epochs without a better validation loss before a trial stops (default %(default)s)",
    )
    lr_search.add_argument(
        "--batch-size",
        type=int_at_least(1),
        default=DEFAULT_BATCH_SIZE,
        help="minibatch size (default %(default)s)",
    )
    lr_search.add_argument(
        "--seed",
        type=int_at_least(0),
        default=0,
        help="fixes split, initial weights, batch order and the random "
        "rates (default %(default)s)",
    )
    lr_search.add_argument(
        "--out", default=DEFAULT_OUT, help="output directory (default %(default)s)"
    )
    lr_search.add_argument(
        "--results",
        default=None,
        metavar="FILE",
        help="the JSON results file, read to resume and written after "
        "every trial (default: OUT/lr_search.json)",
    )
    lr_search.add_argument(
        "--no-progress", dest="progress", action="store_false", help="no progress bar"
    )

    # Each subcommand's own parser, for usage errors found after parsing.
    demo.set_defaults(command_parser=demo)
    lr_find.set_defaults(command_parser=lr_find)
    lr_search.set_defaults(command_parser=lr_search)

    commands.add_parser(
        "bench",
        add_help=False,
        help="benchmarks (arguments go to cyoptim.bench; try bench --help)",
    )
    return parser


def main(argv=None):
    """Run the command line; returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] == "bench":
        # Everything after "bench", --help included, belongs to cyoptim.bench.
        from . import bench

        return _exit_status(bench.main(argv[1:]))
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "lr-find" and not 0 < args.start_lr < args.end_lr:
        args.command_parser.error(
            f"lr-find needs 0 < --start-lr < --end-lr, got {args.start_lr} and {args.end_lr}"
        )
    if args.command == "lr-search":
        return _lr_search(args)
    from .demo import DEMO_FILES, LR_FIND_FILES, check_output_dir, run_demo, run_lr_find

    try:  # before any training: a bad --out must not cost a whole run
        check_output_dir(args.out, DEMO_FILES if args.command == "demo" else LR_FIND_FILES)
    except ValueError as error:
        args.command_parser.error(f"argument --out: {error}")
    if args.command == "demo" and args.framework == "keras":
        if args.schedule != "none":
            args.command_parser.error(
                "--schedule is for --framework numpy; the Keras demo runs without a schedule"
            )
        # This process is the demo's own: Keras gets the torch backend unless
        # KERAS_BACKEND names another (which cyoptim.keras then refuses).
        os.environ.setdefault("KERAS_BACKEND", "torch")
        try:
            from .keras.demo import DEFAULT_OPTIMIZERS, run_keras_demo
        except ImportError as error:
            args.command_parser.error(f"--framework keras: {error}")
        run_keras_demo(
            optimizers=args.optimizers or DEFAULT_OPTIMIZERS,
            epochs=args.epochs,
            batch_size=args.batch_size,
            seed=args.seed,
            threads=args.threads,
        )
    elif args.command == "demo" and args.framework == "torch":
        if args.schedule != "none":
            args.command_parser.error(
                "--schedule is for --framework numpy; the torch demo runs without a schedule"
            )
        try:
            from .torch.demo import run_torch_demo
        except ImportError as error:
            args.command_parser.error(f"--framework torch: {error}")
        run_torch_demo(
            optimizers=args.optimizers,
            epochs=args.epochs,
            batch_size=args.batch_size,
            seed=args.seed,
            threads=args.threads,
        )
    elif args.command == "demo":
        run_demo(
            optimizers=args.optimizers,
            epochs=args.epochs,
            batch_size=args.batch_size,
            schedule=None if args.schedule == "none" else args.schedule,
            seed=args.seed,
            threads=args.threads,
            out=args.out,
            progress=args.progress,
            ema=args.ema,
        )
    else:
        run_lr_find(
            optimizer=args.optimizer,
            out=args.out,
            seed=args.seed,
            start_lr=args.start_lr,
            end_lr=args.end_lr,
            num_iter=args.num_iter,
        )
    return 0


def _lr_search(args):
    """``lr-search``: usage errors before any training; Ctrl-C says how to resume."""
    from .demo import LR_SEARCH_FILES, check_output_dir, run_lr_search

    error = args.command_parser.error
    lr_range = None
    if args.min_lr is not None or args.max_lr is not None:
        if args.lrs is not None:
            error("give --lrs or --min-lr/--max-lr, not both")
        lr_range = (
            DEFAULT_LR_RANGE[0] if args.min_lr is None else args.min_lr,
            DEFAULT_LR_RANGE[1] if args.max_lr is None else args.max_lr,
        )
        if not lr_range[0] < lr_range[1]:
            error(f"lr-search needs --min-lr < --max-lr, got {lr_range[0]:g} and {lr_range[1]:g}")
    if args.lrs is not None:
        if args.mode == "random":
            error("--lrs is for --mode grid; a random search draws from --min-lr to --max-lr")
        if args.trials is not None and args.trials != len(args.lrs):
            error(
                f"--trials {args.trials} does not match the {len(args.lrs)} rates of --lrs "
                f"(leave --trials out)"
            )
    try:
        check_output_dir(args.out, LR_SEARCH_FILES)
    except ValueError as problem:
        error(f"argument --out: {problem}")
    results = args.results or os.path.join(args.out, "lr_search.json")
    folder = os.path.dirname(os.path.abspath(results))
    if not os.path.isdir(folder):
        error(f"argument --results: the folder {folder} does not exist")
    try:
        run_lr_search(
            optimizer=args.optimizer,
            mode=args.mode,
            trials=args.trials,
            lrs=args.lrs,
            lr_range=lr_range,
            max_epochs=args.max_epochs,
            patience=args.patience,
            batch_size=args.batch_size,
            seed=args.seed,
            out=args.out,
            results_file=results,
            progress=args.progress,
        )
    except KeyboardInterrupt:
        print(
            f"\ninterrupted: the finished trials are in {results}; run the same command "
            f"again to resume",
            file=sys.stderr,
        )
        return 130
    except ResultsFileError as problem:  # from other settings, or unreadable
        print(f"error: {problem}", file=sys.stderr)
        return 1
    return 0


def _exit_status(result):
    """A command's return value as an exit status: itself when an int, else 0."""
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
