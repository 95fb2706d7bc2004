"""MkDocs hook: the configuration reference page, generated from config/schema.yaml at build time.

The page (`configuration.md`) is added to the site as a generated file and never written into
the tree. It walks the JSON schema generically: it follows `$ref` (JSON pointers such as
`#/$defs/model`) and `allOf`, descends into objects' `properties`, into maps whose values are
objects (`additionalProperties` or `patternProperties` holding a schema: `genomes.<name>`),
into list items that are objects (`path[]`) and into the object alternative of an
`anyOf`/`oneOf` (an optional sub-object), and lists every key with its dotted path, type,
default, allowed values or limits and description. No key name is known here, so the page
follows the schema as it changes.

Enabled in mkdocs.yml with `hooks: [docs/hooks/config_reference.py]`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from mkdocs.structure.files import File, Files

SCHEMA = "config/schema.yaml"  # relative to mkdocs.yml
PAGE = "configuration.md"
NAME = "<name>"  # stands for a key the user chooses in a name-keyed map


def _schema_path(config) -> Path:
    return Path(config.config_file_path).resolve().parent / SCHEMA


def on_files(files: Files, config) -> Files:
    text = render(yaml.safe_load(_schema_path(config).read_text()))
    files.append(File.generated(config, PAGE, content=text))
    return files


def on_serve(server, config, builder):
    server.watch(str(_schema_path(config)))
    return server


# ---------------------------------------------------------------- walking the schema


class Schema:
    def __init__(self, root: dict):
        self.root = root

    def pointer(self, ref: str) -> dict:
        if not ref.startswith("#"):
            raise ValueError(f"{SCHEMA}: only local $ref are supported, not {ref!r}")
        node = self.root
        for part in filter(None, ref[1:].split("/")):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        return node

    def resolve(self, node, depth: int = 0) -> dict:
        """node with $ref and allOf merged in (the node's own keys win, properties are merged)."""
        if not isinstance(node, dict):
            return {}
        if depth > 50:
            raise ValueError(f"{SCHEMA}: $ref cycle")
        node = dict(node)
        parts = []
        if "$ref" in node:
            parts.append(self.resolve(self.pointer(node.pop("$ref")), depth + 1))
        parts += [self.resolve(sub, depth + 1) for sub in node.pop("allOf", [])]
        for part in parts:
            merged = {**part, **node}
            if "properties" in part or "properties" in node:
                merged["properties"] = {**part.get("properties", {}), **node.get("properties", {})}
            if "required" in part or "required" in node:
                merged["required"] = list(dict.fromkeys(part.get("required", []) + node.get("required", [])))
            node = merged
        return node

    def alternatives(self, node: dict) -> list[dict]:
        return [self.resolve(sub) for sub in node.get("anyOf", []) + node.get("oneOf", [])]

    def object_form(self, node: dict) -> dict | None:
        """The schema of the sub-object `node` describes (itself, or its object alternative), if it has keys."""
        if node.get("properties"):
            return node
        objects = [alt for alt in self.alternatives(node) if alt.get("properties")]
        return objects[0] if len(objects) == 1 else None

    def map_values(self, node: dict) -> list[dict]:
        """Value schemas of a name-keyed map (additionalProperties / patternProperties holding a schema)."""
        values = []
        if isinstance(node.get("additionalProperties"), dict):
            values.append(self.resolve(node["additionalProperties"]))
        values += [self.resolve(sub) for sub in node.get("patternProperties", {}).values()]
        return values

    def type_of(self, node: dict) -> str:
        if "const" in node:
            return f"constant {_json(node['const'])}"
        types = node.get("type", [])
        types = [types] if isinstance(types, str) else list(types)
        words = []
        for t in types:
            if t == "array" and isinstance(node.get("items"), dict):
                words.append(f"list of {self.type_of(self.resolve(node['items']))}")
            elif t == "object" and not node.get("properties") and self.map_values(node):
                values = " or ".join(dict.fromkeys(self.type_of(v) for v in self.map_values(node)))
                words.append(f"map: name → {values}")
            else:
                words.append(t)
        if not types and node.get("properties"):
            words.append("object")
        words += [self.type_of(alt) for alt in self.alternatives(node)]
        if not words and "enum" in node:
            words.append(" or ".join(dict.fromkeys(_json_type(v) for v in node["enum"])))
        return " or ".join(dict.fromkeys(w for w in words if w)) or "any"

    def limits(self, node: dict) -> list[str]:
        out = []
        if "enum" in node:
            out.append("one of " + ", ".join(_code(_json(v)) for v in node["enum"]))
        for key, sign in (("minimum", "≥"), ("exclusiveMinimum", ">"), ("maximum", "≤"),
                          ("exclusiveMaximum", "<")):
            if isinstance(node.get(key), (int, float)) and not isinstance(node.get(key), bool):
                out.append(f"{sign} {_json(node[key])}")
        for key, words in (("minItems", "at least {} item(s)"), ("maxItems", "at most {} item(s)"),
                           ("minLength", "at least {} character(s)"), ("maxLength", "at most {} character(s)"),
                           ("minProperties", "at least {} key(s)"), ("maxProperties", "at most {} key(s)")):
            if key in node:
                out.append(words.format(node[key]))
        if "pattern" in node:
            out.append(f"matches {_code(node['pattern'])}")
        if "format" in node:
            out.append(f"format {node['format']}")
        if isinstance(node.get("propertyNames"), dict):
            names = self.limits(self.resolve(node["propertyNames"]))
            out += [f"names: {limit}" for limit in names]
        if isinstance(node.get("items"), dict):
            out += [f"items: {limit}" for limit in self.limits(self.resolve(node["items"]))]
        for alt in self.alternatives(node):
            out += self.limits(alt)
        return list(dict.fromkeys(out))


@dataclass
class Row:
    path: str
    type: str
    default: str
    limits: list[str]
    description: str
    link: str | None = None  # anchor of the section that documents this key's keys


@dataclass
class Section:
    path: str
    description: str
    rows: list[Row] = field(default_factory=list)
    closed: bool = True  # additionalProperties: false


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def walk(schema: Schema, node: dict, path: str, sections: list[Section], description: str = "") -> None:
    """Append the section of the object `node` (at dotted `path`), then those of its sub-objects."""
    section = Section(path, description or node.get("description", ""),
                      closed=node.get("additionalProperties") is False)
    sections.append(section)
    required = set(node.get("required", []))
    children = []
    for key, sub in node.get("properties", {}).items():
        sub = schema.resolve(sub)
        full = _join(path, key)
        row = Row(full, schema.type_of(sub), _default(sub, key in required), schema.limits(sub),
                  sub.get("description", ""))
        section.rows.append(row)
        targets = []
        obj = schema.object_form(sub)
        if obj is not None:
            targets.append((full, obj, sub.get("description", "")))
            if _defaults_agree(schema, obj, sub.get("default")):
                row.default = "its keys' defaults"
        for value in schema.map_values(sub):
            value_obj = schema.object_form(value)
            if value_obj is not None:
                targets.append((f"{full}.{NAME}", value_obj, value.get("description", "")))
        if isinstance(sub.get("items"), dict):
            item_obj = schema.object_form(schema.resolve(sub["items"]))
            if item_obj is not None:
                targets.append((f"{full}[]", item_obj, item_obj.get("description", "")))
        if targets:
            row.link = anchor(targets[0][0])
        children += targets
    for child_path, child, child_description in children:
        walk(schema, child, child_path, sections, child_description)


# ---------------------------------------------------------------- writing markdown


def anchor(path: str) -> str:
    return "cfg-" + (re.sub(r"[^a-z0-9]+", "-", path.lower()).strip("-") or "top")


def _json(value) -> str:
    return json.dumps(value, ensure_ascii=False)


def _json_type(value) -> str:
    return {bool: "boolean", int: "integer", float: "number", str: "string", type(None): "null",
            list: "array", dict: "object"}.get(type(value), "any")


def _code(text: str) -> str:
    """text as an inline code span that survives backticks (Python-Markdown's tables do not split
    a row at a pipe inside a code span)."""
    ticks = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


def _defaults_agree(schema: Schema, obj: dict, default) -> bool:
    """Whether an object's default only repeats the defaults of its keys (then the page says so)."""
    if not isinstance(default, dict):
        return False
    props = obj.get("properties", {})
    for key, value in default.items():
        child = schema.resolve(props.get(key))
        if "default" not in child or child["default"] != value:
            sub = schema.object_form(child)
            if sub is None or not _defaults_agree(schema, sub, value):
                return False
    return True


def _default(node: dict, required: bool) -> str:
    if "default" in node:
        return _code(_json(node["default"]))
    return "required" if required else "–"


def _prose(text: str) -> str:
    """A description as one line of markdown: code spans kept, HTML-like text and braces escaped."""
    text = " ".join(str(text).split())
    pieces = re.split(r"(`+[^`]*`+)", text)
    out = []
    for i, piece in enumerate(pieces):
        if i % 2 == 0:
            piece = piece.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("{", "&#123;")
            piece = piece.replace("|", "\\|")
        out.append(piece)
    return "".join(out)


def render(root: dict) -> str:
    schema = Schema(root)
    sections: list[Section] = []
    walk(schema, schema.resolve(root), "", sections)
    lines = [
        "# Configuration reference",
        "",
        f"Every key of the workflow's config, generated from `{SCHEMA}` when this site is built "
        "(the Snakefile validates every config against that schema before anything runs).",
        "",
        _prose(root.get("description", "")),
        "",
        f"Dotted paths name nested keys; `{NAME}` stands for a name you choose (a genome, a model, a "
        "region set...) and `[]` for each item of a list. A default of – means the key has none.",
        "",
    ]
    for section in sections:
        title = f"`{section.path}`" if section.path else "Top-level keys"
        lines += [f"## {title} {{ #{anchor(section.path)} }}", ""]
        if section.description and section.path:
            lines += [_prose(section.description), ""]
        if section.closed:
            lines += ["Keys not listed here are rejected.", ""]
        if not section.rows:
            lines += ["No keys of its own.", ""]
            continue
        lines += ["| key | type | default | allowed | description |", "|---|---|---|---|---|"]
        for row in section.rows:
            description = " ".join(filter(None, [_prose(row.description),
                                                 f"Keys: [below](#{row.link})." if row.link else ""]))
            lines.append(f"| {_code(row.path)} | {_prose(row.type)} | {row.default} | "
                         f"{'; '.join(row.limits) or '–'} | {description} |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":  # print the page: python docs/hooks/config_reference.py [schema.yaml]
    import sys

    path = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[2] / SCHEMA
    print(render(yaml.safe_load(path.read_text())))
