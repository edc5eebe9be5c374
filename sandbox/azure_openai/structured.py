"""Values that validate against a JSON schema, with the content chosen by a `Guesser`.

Used for structured outputs (`response_format` json_schema) and for tool-call arguments. The
walker owns validity (types, enums, const, required, additionalProperties, bounds, local $refs,
nullable unions); the guesser owns meaning (what a "summary" or a "sheet_name" should say).
"""

from __future__ import annotations

from typing import Any, Protocol

MISSING: Any = object()


class Guesser(Protocol):
    def guess(self, name: str, description: str, kind: str, schema: dict[str, Any]) -> Any:
        """A value for the property, or None when the request gives nothing to go on."""


def resolve(schema: Any, root: dict[str, Any]) -> dict[str, Any]:
    seen = 0
    while isinstance(schema, dict) and "$ref" in schema and seen < 20:
        ref = schema["$ref"]
        target: Any = root
        if ref.startswith("#"):
            for part in [p for p in ref[1:].split("/") if p]:
                target = target.get(part, {}) if isinstance(target, dict) else {}
        else:
            target = {}
        schema = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
        seen += 1
    return schema if isinstance(schema, dict) else {}


def _types(schema: dict[str, Any]) -> list[str]:
    kind = schema.get("type")
    if isinstance(kind, list):
        return [str(k) for k in kind]
    if isinstance(kind, str):
        return [kind]
    if "properties" in schema:
        return ["object"]
    if "items" in schema:
        return ["array"]
    return ["string"]


def fill(
    schema: dict[str, Any],
    guesser: Guesser,
    *,
    root: dict[str, Any] | None = None,
    name: str = "",
    optional: bool = False,
    all_properties: bool = True,
    depth: int = 0,
) -> Any:
    """A value for `schema`; with `optional`, MISSING when the guesser has nothing to offer.

    `all_properties` fills every declared property (structured outputs: strict mode requires
    them all); otherwise only required ones plus optional ones the guesser can fill (tool calls).
    """
    root = root if root is not None else schema
    schema = resolve(schema, root)
    description = str(schema.get("description", ""))
    if "const" in schema:
        return schema["const"]
    for key in ("anyOf", "oneOf"):
        if schema.get(key):
            branches = [resolve(b, root) for b in schema[key]]
            concrete = [b for b in branches if _types(b) != ["null"]] or branches
            merged = {**concrete[0]}
            if description and "description" not in merged:
                merged["description"] = description
            return fill(
                merged,
                guesser,
                root=root,
                name=name,
                optional=optional,
                all_properties=all_properties,
                depth=depth,
            )
    if schema.get("allOf"):
        merged: dict[str, Any] = {}
        for part in schema["allOf"]:
            merged.update(resolve(part, root))
        return fill(merged, guesser, root=root, name=name, optional=optional, depth=depth)

    types = _types(schema)
    concrete = [t for t in types if t != "null"]
    if not concrete:
        return None
    kind = concrete[0]

    if "enum" in schema:
        options = [o for o in schema["enum"] if o is not None] or list(schema["enum"])
        picked = guesser.guess(name, description, "enum", {**schema, "enum": options})
        if picked in options:
            return picked
        if optional:
            return MISSING
        return options[0] if options else None

    nullable = "null" in types
    if kind == "object":
        if depth > 8:
            return {}
        if nullable:
            # A nullable object (an optional sort, say): only when the request calls for one.
            guessed = guesser.guess(name, description, "object", schema)
            if not isinstance(guessed, dict):
                return MISSING if optional else None
            return guessed
        properties = schema.get("properties") or {}
        required = set(schema.get("required") or [])
        out: dict[str, Any] = {}
        for prop, prop_schema in properties.items():
            must = all_properties or prop in required
            value = fill(
                prop_schema,
                guesser,
                root=root,
                name=prop,
                optional=not must,
                all_properties=all_properties,
                depth=depth + 1,
            )
            if value is not MISSING:
                out[prop] = value
        return out

    if kind == "array":
        items = resolve(schema.get("items") or {"type": "string"}, root)
        guessed = guesser.guess(name, description, "array", {**schema, "items": items})
        if guessed is None and optional:
            return MISSING
        if guessed is None and nullable:
            return None
        values = list(guessed) if isinstance(guessed, list) else []
        low = int(schema.get("minItems", 0))
        high = int(schema.get("maxItems", max(low, len(values), 1)))
        out_items = []
        item_types = _types(items)
        for value in values[:high]:
            if "enum" in items:
                if value in items["enum"]:
                    out_items.append(value)
            elif _fits(value, item_types):
                out_items.append(value)
        while len(out_items) < low:
            out_items.append(fill(items, guesser, root=root, name=_singular(name), depth=depth + 1))
        return out_items

    guessed = guesser.guess(name, description, kind, schema)
    if guessed is None:
        if optional:
            return MISSING
        if "default" in schema:
            return schema["default"]
        if nullable:
            return None
    return _coerce(guessed, kind, schema, name)


def _singular(name: str) -> str:
    return name[:-1] if name.endswith("s") else name


def _fits(value: Any, types: list[str]) -> bool:
    checks = {
        "string": lambda v: isinstance(v, str),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        "boolean": lambda v: isinstance(v, bool),
        "object": lambda v: isinstance(v, dict),
        "array": lambda v: isinstance(v, list),
        "null": lambda v: v is None,
    }
    return any(checks.get(t, lambda v: False)(value) for t in types)


def _coerce(value: Any, kind: str, schema: dict[str, Any], name: str) -> Any:
    if kind == "boolean":
        return bool(value) if value is not None else False
    if kind in ("integer", "number"):
        try:
            number = float(value) if value is not None else None
        except (TypeError, ValueError):
            number = None
        if number is None:
            number = float(schema.get("minimum", 0))
        if "minimum" in schema:
            number = max(number, float(schema["minimum"]))
        if "maximum" in schema:
            number = min(number, float(schema["maximum"]))
        if "exclusiveMinimum" in schema and number <= float(schema["exclusiveMinimum"]):
            number = float(schema["exclusiveMinimum"]) + 1
        if "exclusiveMaximum" in schema and number >= float(schema["exclusiveMaximum"]):
            number = float(schema["exclusiveMaximum"]) - 1
        if kind == "integer":
            return round(number)
        return round(number, 2)
    text = "" if value is None else str(value)
    fmt = schema.get("format")
    if fmt == "date" and text[:10].count("-") != 2:
        text = "2025-01-01"
    elif fmt == "date-time" and "T" not in text:
        text = "2025-01-01T00:00:00Z"
    elif fmt == "email" and "@" not in text:
        text = "someone@example.com"
    if not text:
        text = name.replace("_", " ").strip() or "n/a"
    if "maxLength" in schema:
        text = text[: int(schema["maxLength"])]
    if "minLength" in schema and len(text) < int(schema["minLength"]):
        text = text.ljust(int(schema["minLength"]), ".")
    return text
