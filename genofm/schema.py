"""config/schema.yaml from the dataclasses of genofm.config, and clear errors for unknown keys.

    python -m genofm.schema > config/schema.yaml
"""

from __future__ import annotations

import dataclasses
import sys
import typing
from dataclasses import MISSING, fields

from .config import NAME_PATTERN, WorkflowConfig
from .errors import GenofmInputError

# --- the JSON schema -----------------------------------------------------------------------

_SCALARS = {int: "integer", float: "number", bool: "boolean", str: "string"}


def _type_schema(hint) -> dict:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint in _SCALARS:
        return {"type": _SCALARS[hint]}
    if origin in (typing.Union, getattr(__import__("types"), "UnionType")):
        names = [_SCALARS[a] if a in _SCALARS else "null" for a in args]
        return {"type": names}
    if origin is list:
        return {"type": "array", "items": _type_schema(args[0])}
    if origin is dict:
        value = args[1]
        if dataclasses.is_dataclass(value):
            return {"type": "object", "propertyNames": {"pattern": NAME_PATTERN},
                    "additionalProperties": object_schema(value)}
        return {"type": "object", "additionalProperties": _type_schema(value)}
    if dataclasses.is_dataclass(hint):
        return object_schema(hint)
    raise TypeError(f"no schema for {hint!r}")


def _plain(value):
    """A default as YAML/JSON writes it (dataclass instances as mappings)."""
    if dataclasses.is_dataclass(value):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value) if f.metadata.get("in_config", True)}
    return value


def object_schema(cls) -> dict:
    hints = typing.get_type_hints(cls, vars(sys.modules[cls.__module__]))
    properties, required = {}, []
    for f in fields(cls):
        meta = f.metadata
        if not meta.get("in_config", True):
            continue
        sub = _type_schema(hints[f.name])
        if dataclasses.is_dataclass(hints[f.name]):
            sub = {k: v for k, v in sub.items() if k != "description"}
        if meta.get("items"):
            sub["items"] = {**sub["items"], **meta["items"]}
        if meta.get("choices"):
            sub["enum"] = list(meta["choices"])
        sub.update(meta.get("limits") or {})
        sub["description"] = meta.get("doc") or ""
        default = f.default_factory() if f.default_factory is not MISSING else f.default
        sub["default"] = _plain(default)
        if meta.get("required"):
            required.append(f.name)
        properties[f.name] = sub
    schema = {"type": "object"}
    if cls.__doc__ and not cls.__doc__.startswith(cls.__name__ + "("):
        schema["description"] = " ".join(cls.__doc__.split())
    schema["additionalProperties"] = False
    if required:
        schema["required"] = required
    schema["properties"] = properties
    return schema


def workflow_schema() -> dict:
    body = object_schema(WorkflowConfig)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": "genofm workflow configuration",
            **body}


def schema_yaml() -> str:
    import yaml

    header = ("# Generated from genofm/config.py by `python -m genofm.schema > config/schema.yaml`: edit the\n"
              "# dataclasses there, not this file (tests/test_config.py checks that it is current).\n")
    return header + yaml.safe_dump(workflow_schema(), sort_keys=False, width=110, allow_unicode=True)


# --- clear errors for keys the schema does not know ----------------------------------------

MOVED_TO_RESOURCES = {"threads", "gpus", "processes", "mem_mb", "runtime"}


def unknown_key_problems(values: dict, cls=None, path: str = "") -> list[str]:
    """One line per key of the config that `cls` does not have: where it is, the keys allowed
    there, and, for a resource setting of old configs, where it lives now. Validating against
    the schema would find them too, but print the whole schema after the key."""
    cls = cls or WorkflowConfig
    hints = typing.get_type_hints(cls, vars(sys.modules[cls.__module__]))
    allowed = [f.name for f in fields(cls) if f.metadata.get("in_config", True)]
    problems = []
    for key, value in values.items():
        where = f"{path}.{key}" if path else str(key)
        if key not in allowed:
            hint = (f"; it moved to {path + '.' if path else ''}resources.{key}"
                    if key in MOVED_TO_RESOURCES and "resources" in allowed else "")
            problems.append(f"unknown config key {where!r}{hint} (allowed at {path or 'the top level'}: "
                            f"{', '.join(allowed)})")
            continue
        hint = hints[key]
        if dataclasses.is_dataclass(hint) and isinstance(value, dict):
            problems += unknown_key_problems(value, hint, where)
        elif typing.get_origin(hint) is dict and dataclasses.is_dataclass(typing.get_args(hint)[1]) \
                and isinstance(value, dict):
            for name, item in value.items():
                if isinstance(item, dict):
                    problems += unknown_key_problems(item, typing.get_args(hint)[1], f"{where}.{name}")
    return problems


def check_config_keys(values: dict, sources) -> None:
    """Stop on unknown keys with one line each, naming the config files they came from."""
    problems = unknown_key_problems(values)
    if problems:
        files = ", ".join(map(str, sources or ["config/config.yaml"]))
        raise GenofmInputError("\n".join([f"in {files}:", *problems]))


if __name__ == "__main__":
    sys.stdout.write(schema_yaml())
