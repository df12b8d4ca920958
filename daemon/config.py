"""Typed configuration: one dataclass, loaded from a TOML file, overridden by CLI flags.

Both `caed` and `caed-view` describe their settings as a dataclass whose field metadata carries
the help text and the limits; this module turns that into argparse flags and TOML validation so
that a bad value from either place is reported the same way, naming the key.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any, Sequence, TypeVar, get_type_hints

try:
    import tomllib
except ImportError:  # Python < 3.11 (PetaLinux kirkstone/langdale ship 3.10)
    import tomli as tomllib

T = TypeVar("T")
EXIT_USAGE = 2


class ConfigError(ValueError):
    """A configuration value is unusable; the message names the key and the value."""

    def __init__(self, key: str, value: Any, why: str):
        super().__init__(f"{key} = {value!r}: {why}")
        self.key = key


def setting(default: Any, help: str, *, choices: Sequence | None = None, min: float | None = None,
            max: float | None = None):
    """A dataclass field with the metadata the loader needs."""
    meta = {"help": help, "choices": choices, "min": min, "max": max}
    if isinstance(default, list):
        return dataclasses.field(default_factory=lambda: list(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def _flag(f: dataclasses.Field) -> str:
    return "--" + f.name.replace("_", "-")


def _check(f: dataclasses.Field, kind: type, value: Any) -> Any:
    key = f.name
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if kind is list:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(key, value, "must be a list of strings")
    elif not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise ConfigError(key, value, f"must be of type {kind.__name__}")
    m = f.metadata
    if m.get("choices") is not None and value not in m["choices"]:
        raise ConfigError(key, value, "must be one of " + ", ".join(map(str, m["choices"])))
    if m.get("min") is not None and value < m["min"]:
        raise ConfigError(key, value, f"must be >= {m['min']}")
    if m.get("max") is not None and value > m["max"]:
        raise ConfigError(key, value, f"must be <= {m['max']}")
    return value


def _fields(cls) -> list[tuple[dataclasses.Field, type]]:
    hints = get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        kind = hints[f.name]
        kind = getattr(kind, "__origin__", kind)
        out.append((f, kind))
    return out


def build_parser(cls, prog: str, description: str, epilog: str = "") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=description, epilog=epilog,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", metavar="FILE", type=Path,
                   help="TOML file with any of the settings below (flags override it)")
    for f, kind in _fields(cls):
        names = [_flag(f)]
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        help_text = f"{f.metadata['help']} (default: {default})"
        if kind is bool:
            p.add_argument(*names, dest=f.name, action=argparse.BooleanOptionalAction, default=None, help=help_text)
        elif kind is list:
            p.add_argument(*names, dest=f.name, action="append", default=None, metavar=f.name.upper(), help=help_text)
        else:
            p.add_argument(*names, dest=f.name, type=kind, default=None, metavar=f.name.upper(),
                           choices=f.metadata.get("choices"), help=help_text)
    return p


def from_sources(cls: type[T], toml: dict, flags: dict) -> T:
    """Defaults < TOML < flags; every value checked, unknown TOML keys rejected."""
    known = {f.name: (f, kind) for f, kind in _fields(cls)}
    for key in toml:
        if key not in known:
            raise ConfigError(key, toml[key], "unknown setting (valid: " + ", ".join(sorted(known)) + ")")
    values = {}
    for name, (f, kind) in known.items():
        if flags.get(name) is not None:
            values[name] = _check(f, kind, flags[name])
        elif name in toml:
            values[name] = _check(f, kind, toml[name])
    cfg = cls(**values)
    validate = getattr(cfg, "validate", None)
    if validate:
        validate()
    return cfg


def read_toml(path: Path) -> dict:
    """The TOML table in `path` (OSError or tomllib.TOMLDecodeError if unreadable)."""
    return tomllib.loads(Path(path).read_text())


def load(cls: type[T], argv: Sequence[str] | None, prog: str, description: str, epilog: str = "",
         extra: callable = None) -> tuple[T, argparse.Namespace]:
    """Parse argv (and --config); on a bad value print `prog: error: KEY = VALUE: why` and exit 2."""
    parser = build_parser(cls, prog, description, epilog)
    if extra:
        extra(parser)
    args = parser.parse_args(argv)
    toml: dict = {}
    if args.config is not None:
        try:
            toml = read_toml(args.config)
        except OSError as e:
            parser.exit(EXIT_USAGE, f"{prog}: error: --config {args.config}: {e.strerror}\n")
        except tomllib.TOMLDecodeError as e:
            parser.exit(EXIT_USAGE, f"{prog}: error: --config {args.config}: not valid TOML: {e}\n")
    try:
        cfg = from_sources(cls, toml, vars(args))
    except ConfigError as e:
        parser.exit(EXIT_USAGE, f"{prog}: error: {e}\n")
    return cfg, args


def write_summary(path: str, cfg, summary: dict) -> None:
    """The run's JSON summary, with the configuration that produced it."""
    with open(path, "w") as f:
        json.dump({"config": dataclasses.asdict(cfg), **summary}, f, indent=2)


def fail(prog: str, message: str, status: int = 1) -> None:
    """Print a one-line error the way argparse does and exit."""
    sys.stderr.write(f"{prog}: error: {message}\n")
    raise SystemExit(status)
