"""Command-line argument types the bench scripts share."""
from __future__ import annotations

import argparse


def comma_separated(kind):
    """An argparse type for a comma-separated list of `kind` values ("0,1,2" -> [0, 1, 2]): a bad
    item is argparse's usage error naming the option (exit status 2), not a traceback."""
    def parse(text: str) -> list:
        try:
            return [kind(item) for item in text.split(",")]
        except ValueError:
            raise argparse.ArgumentTypeError(f"takes comma-separated {kind.__name__} values, got {text!r}") from None

    return parse
