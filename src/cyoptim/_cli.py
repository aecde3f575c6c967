"""Pieces shared by the command-line parsers (``python -m cyoptim ...`` and its bench).

Argument types raise ``argparse.ArgumentTypeError``, so a bad value becomes a
usage error (exit status 2) that names the option, never a traceback.
"""

import argparse
import math
import textwrap


class HelpFormatter(argparse.HelpFormatter):
    """argparse's formatter, but wrapping only at spaces: no word (``torch-default``,
    a long name) is split across lines."""

    def _split_lines(self, text, width):
        text = self._whitespace_matcher.sub(" ", text).strip()
        return textwrap.wrap(text, width, break_on_hyphens=False, break_long_words=False)

    def _fill_text(self, text, width, indent):
        text = self._whitespace_matcher.sub(" ", text).strip()
        return textwrap.fill(
            text,
            width,
            initial_indent=indent,
            subsequent_indent=indent,
            break_on_hyphens=False,
            break_long_words=False,
        )


def int_at_least(minimum):
    """An argparse type: an integer >= minimum."""

    def parse(text):
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {text!r}")
        return value

    return parse


def _float_where(text, accept, expected):
    """Parse text as a finite float that accept() takes, or fail with 'expected <expected>'."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and accept(value)):
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return value


def positive_float(text):
    """An argparse type: a finite number > 0."""
    return _float_where(text, lambda value: value > 0, "a finite number > 0")


def non_negative_float(text):
    """An argparse type: a finite number >= 0."""
    return _float_where(text, lambda value: value >= 0, "a finite number >= 0")


def unit_interval(text):
    """An argparse type: a number in [0, 1]."""
    return _float_where(text, lambda value: 0 <= value <= 1, "a number in [0, 1]")
