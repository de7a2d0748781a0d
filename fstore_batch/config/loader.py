"""The one config loader: YAML file -> environment overrides -> CLI overrides -> typed model.

Overrides use dotted key paths:

* environment: ``FSTORE__HBASE__PORT=9091`` (prefix ``FSTORE__``, ``__`` between levels)
* CLI: ``--set hbase.port=9091`` (values are parsed as YAML scalars, so ``true``/``3``/``[a]`` work)

A file may start from another: ``extends: ../sample.yaml`` (relative to the file) loads that file
first and merges this one over it, mapping by mapping; lists and scalars replace the base's
(conf/profiles/cluster.yaml extends conf/sample.yaml this way).

Errors name the file, the key, the bad value and what was expected, listing every problem.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from fstore_batch.config.models import IDENTIFIER_PATTERN
from fstore_batch.errors import ConfigError, ConfigFileError, ConfigValidationError

M = TypeVar("M", bound=BaseModel)
ENV_PREFIX = "FSTORE__"
EXTENDS_KEY = "extends"

_PATTERN_MEANING = {
    IDENTIFIER_PATTERN: "a name of letters, digits and '_' not starting with a digit",
}


def read_yaml(path: str | os.PathLike[str]) -> dict[str, Any]:
    p = Path(path)
    if not p.exists():
        raise ConfigFileError(str(p), "no such file")
    if not p.is_file():
        raise ConfigFileError(str(p), "not a file")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigFileError(str(p), f"invalid YAML{where}: {getattr(e, 'problem', e)}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigFileError(str(p), f"cannot read: {e}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigFileError(str(p), f"expected a mapping at the top level, got {type(data).__name__}")
    return data


def read_config_file(path: str | os.PathLike[str], _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The YAML mapping at ``path`` merged over the file it ``extends`` (recursively), ``extends`` removed."""
    data = read_yaml(path)
    base = data.pop(EXTENDS_KEY, None)
    if base is None:
        return data
    here = Path(path).resolve()
    if not isinstance(base, str) or not base.strip():
        raise ConfigFileError(str(path), f"{EXTENDS_KEY}: expected the path of a config file, got {base!r}")
    base_path = (here.parent / base).resolve()
    if base_path in (*_seen, here):
        raise ConfigFileError(str(path), f"{EXTENDS_KEY}: {base} extends itself (through {[str(p) for p in _seen]})")
    if not base_path.is_file():
        raise ConfigFileError(str(path), f"{EXTENDS_KEY}: {base} ({base_path}): no such file")
    return _merge(read_config_file(base_path, (*_seen, here)), data)


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def parse_override(item: str) -> tuple[list[str], Any]:
    """``"hbase.port=9091"`` -> ``(["hbase", "port"], 9091)``."""
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {item!r}: expected KEY=VALUE with a dotted key, e.g. hbase.port=9091")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return [k for k in key.strip().split(".")], value


def env_overrides(env: Mapping[str, str]) -> list[tuple[list[str], Any]]:
    out = []
    for name, raw in sorted(env.items()):
        if name.startswith(ENV_PREFIX) and len(name) > len(ENV_PREFIX):
            path = [part.lower() for part in name[len(ENV_PREFIX):].split("__")]
            out.append(parse_override(".".join(path) + "=" + raw))
    return out


def apply_override(data: dict[str, Any], path: list[str], value: Any) -> None:
    node: Any = data
    for i, key in enumerate(path[:-1]):
        if isinstance(node, list):
            node = node[_list_index(node, key, path[: i + 1])]
            continue
        if not isinstance(node, dict):
            raise ConfigError(f"override {'.'.join(path)}: '{'.'.join(path[:i])}' is not a mapping")
        nxt = node.get(key)
        if nxt is None:
            nxt = node[key] = {}
        node = nxt
    last = path[-1]
    if isinstance(node, list):
        node[_list_index(node, last, path)] = value
    elif isinstance(node, dict):
        node[last] = value
    else:
        raise ConfigError(f"override {'.'.join(path)}: '{'.'.join(path[:-1])}' is not a mapping")


def _list_index(items: list[Any], key: str, path: list[str]) -> int:
    """A list element by position (``tables.0``) or by its ``name`` (``tables.user_profile``)."""
    if key.isdigit() and int(key) < len(items):
        return int(key)
    for i, item in enumerate(items):
        if isinstance(item, dict) and item.get("name") == key:
            return i
    raise ConfigError(f"override {'.'.join(path)}: no list element '{key}'")


def load_config(
    model: type[M],
    path: str | os.PathLike[str] | None = None,
    *,
    overrides: Iterable[str] = (),
    env: Mapping[str, str] | None = None,
) -> M:
    """Load ``model`` from YAML at ``path`` (optional), then env and CLI overrides.

    >>> from fstore_batch.config import FeatureStoreConfig
    >>> cfg = load_config(FeatureStoreConfig, overrides=["hbase.port=9091"], env={})
    >>> cfg.hbase.port
    9091
    """
    data = read_config_file(path) if path is not None else {}
    sources = env_overrides(os.environ if env is None else env)
    sources += [parse_override(o) for o in overrides]
    for keys, value in sources:
        apply_override(data, keys, value)
    return validate(model, data, source=str(path) if path is not None else "<overrides>")


def validate(model: type[M], data: Mapping[str, Any], *, source: str) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as e:
        problems = [(_key_path(err["loc"], data), _bad_value(err), _expected(err)) for err in e.errors()]
        raise ConfigValidationError(source, problems) from None


def config_hash(cfg: BaseModel) -> str:
    """A stable sha256 of the config's canonical JSON form (key order does not matter)."""
    canonical = json.dumps(cfg.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _key_path(loc: tuple[Any, ...], data: Any) -> str:
    out, node = "", data
    for part in loc:
        if isinstance(part, int):
            name = node[part].get("name") if isinstance(node, list) and part < len(node) and isinstance(node[part], dict) else None
            out += f"[{part}:{name}]" if name else f"[{part}]"
            node = node[part] if isinstance(node, list) and part < len(node) else None
        elif part in ("function-after", "function-before") or str(part).startswith("function-"):
            continue
        else:
            out += ("." if out else "") + str(part)
            node = node.get(part) if isinstance(node, dict) else None
    return out or "<root>"


def _bad_value(err: Mapping[str, Any]) -> Any:
    if err["type"] == "missing":
        return "<missing>"
    return err.get("input")


def _expected(err: Mapping[str, Any]) -> str:
    kind, msg, ctx = err["type"], err["msg"], err.get("ctx") or {}
    if kind == "extra_forbidden":
        return "no such key (check the spelling against the config reference)"
    if kind == "missing":
        return "a value (this key is required)"
    if kind == "string_pattern_mismatch":
        pattern = ctx.get("pattern", "")
        return _PATTERN_MEANING.get(pattern, f"a string matching {pattern}")
    if kind == "enum":
        return f"one of {ctx.get('expected', '')}"
    text = msg.removeprefix("Value error, ").removeprefix("Input should be ")
    return text[0].lower() + text[1:] if text else kind
