"""Tool parameters: JSON schema and argument validation.

Two sources of parameters, one interface:

* ``FunctionArguments`` builds a pydantic model from a Python signature
  (type hints, defaults, ``Annotated[..., Field(...)]``, docstring
  descriptions).  The same model produces the JSON schema sent to the model
  and validates (and coerces) the arguments that come back, so the two can
  never disagree.
* ``SchemaArguments`` wraps an existing JSON schema (an OpenAI tool list, an
  MCP ``inputSchema``) and validates with ``jsonschema``.

Both raise ``ArgumentsInvalid`` with a message written for the model, so
that it can correct its call.
"""

from __future__ import annotations

import copy
import hashlib
import inspect
import re
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import docstring_parser
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model
from pydantic.fields import FieldInfo

from llmgine_nb.frozen import thaw

__all__ = [
    "ArgumentsInvalid",
    "ValidatedArguments",
    "FunctionArguments",
    "SchemaArguments",
    "DocstringInfo",
    "parse_docstring",
    "clean_schema",
    "is_context_annotation",
    "allowed_tool_name",
    "lenient_schema",
    "LEGACY_TYPES",
]

# Keys whose value maps names to schemas (so the names are not keywords).
_SCHEMA_MAPS = ("properties", "$defs", "definitions", "patternProperties", "dependentSchemas")


class ArgumentsInvalid(ValueError):
    """The arguments do not fit the tool's parameters; the message says how."""


@dataclass(frozen=True)
class ValidatedArguments:
    """Arguments after validation.

    ``kwargs`` are what the function is called with (nested models and
    dataclasses as objects); ``data`` is the same in JSON form, for events,
    approval cards and storage.
    """

    kwargs: dict[str, Any]
    data: dict[str, Any]


@dataclass(frozen=True)
class DocstringInfo:
    """What a docstring says: a description and one sentence per parameter."""

    description: str
    params: dict[str, str]


def parse_docstring(doc: str | None) -> DocstringInfo:
    """Read a Google, NumPy or Sphinx (reST) docstring; the style is detected."""
    if not doc:
        return DocstringInfo("", {})
    parsed = docstring_parser.parse(inspect.cleandoc(doc))
    parts = [p for p in (parsed.short_description, parsed.long_description) if p]
    params = {p.arg_name: p.description for p in parsed.params if p.description}
    return DocstringInfo("\n\n".join(parts), params)


def clean_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """Drop pydantic's generated ``title`` keywords, which only cost tokens.

    Walks the schema structurally so that a *property* called ``title`` stays.
    """

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [walk(item) for item in node]
        if not isinstance(node, dict):
            return node
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key == "title" and isinstance(value, str):
                continue
            if key in _SCHEMA_MAPS and isinstance(value, dict):
                out[key] = {name: walk(sub) for name, sub in value.items()}
            elif key in ("default", "const", "enum", "examples"):
                out[key] = value  # literal values, not schemas
            else:
                out[key] = walk(value)
        return out

    return walk(schema)


def is_context_annotation(annotation: Any) -> bool:
    """True for ``ToolContext`` (or a subclass), also inside ``Optional``/``Annotated``."""
    from .context import ToolContext  # local: context imports this module's users

    if annotation is inspect.Parameter.empty:
        return False
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return is_context_annotation(typing.get_args(annotation)[0])
    if origin is typing.Union or isinstance(annotation, types.UnionType):
        return any(is_context_annotation(a) for a in typing.get_args(annotation) if a is not type(None))
    return isinstance(annotation, type) and issubclass(annotation, ToolContext)


def _format_pydantic_errors(tool_name: str, error: ValidationError) -> str:
    lines = []
    for err in error.errors(include_url=False):
        # Fields kept under an alias are reported by their alias: the parameter name.
        loc = ".".join(str(part) for part in err["loc"])
        kind = err.get("type")
        if kind == "missing":
            text = "missing required argument"
        elif kind == "extra_forbidden":
            text = "unexpected argument (the tool has no such parameter)"
        else:
            text = err["msg"]
            if "input" in err:
                text += f" (got {_short_repr(err['input'])})"
        lines.append(f"- {loc or '(arguments)'}: {text}")
    return (
        f"Invalid arguments for tool '{tool_name}':\n" + "\n".join(lines) + "\nFix the arguments and call the tool again."
    )


def _short_repr(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _resolve_hints(fn: Callable[..., Any]) -> dict[str, Any]:
    """The function's type hints with strings (``from __future__ import annotations``) resolved."""
    target = fn
    if not (inspect.isfunction(fn) or inspect.ismethod(fn)) and callable(fn):
        callable_object: Any = fn
        target = callable_object.__call__
    try:
        return typing.get_type_hints(target, include_extras=True)
    except NameError as exc:
        raise TypeError(
            f"could not resolve the type hints of {getattr(fn, '__qualname__', fn)!r}: {exc}. "
            "Define the types it names at module level (not inside a function) so they can be looked up."
        ) from None
    except TypeError:
        # Objects without annotations of their own (a functools.partial, ...):
        # fall back to what the signature shows.
        return {}


class FunctionArguments:
    """Parameters of a Python callable as a pydantic model.

    ``context_params`` names the parameters annotated with ``ToolContext``:
    they are left out of the schema and filled in by the manager.
    """

    def __init__(self, fn: Callable[..., Any], tool_name: str, docstring: DocstringInfo | None = None) -> None:
        self.tool_name = tool_name
        docstring = docstring or parse_docstring(inspect.getdoc(fn))
        try:
            signature = inspect.signature(fn)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"cannot read the signature of {fn!r} to make tool '{tool_name}': {exc}") from None
        hints = _resolve_hints(fn)
        fields: dict[str, Any] = {}
        self.context_params: list[str] = []
        # internal field name -> parameter name, for names pydantic cannot use
        self._aliases: dict[str, str] = {}
        # Every name a field may not take: an internal name must not hide a real parameter.
        self._taken: set[str] = set(signature.parameters)
        for index, (name, param) in enumerate(signature.parameters.items()):
            annotation = hints.get(name, param.annotation)
            if is_context_annotation(annotation):
                self.context_params.append(name)
                continue
            if param.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
                raise TypeError(
                    f"tool '{tool_name}' has a *{name} or **{name} parameter, which a model cannot fill in; "
                    "give it named parameters instead"
                )
            if param.kind is inspect.Parameter.POSITIONAL_ONLY:
                raise TypeError(
                    f"tool '{tool_name}' has a positional-only parameter '{name}'; tools are called with "
                    "keyword arguments, so remove the '/' from its signature"
                )
            if annotation is inspect.Parameter.empty:
                annotation = Any
            field_name = self._field_name(name, index)  # before _field_info, which reads the aliases
            fields[field_name] = (annotation, self._field_info(name, annotation, param, docstring))
        config = ConfigDict(extra="forbid", protected_namespaces=(), arbitrary_types_allowed=False)
        try:
            self.model: type[BaseModel] = create_model(
                f"{_model_name(tool_name)}Arguments", __config__=config, **fields
            )
            schema = self.model.model_json_schema()
        except Exception as exc:  # pydantic raises several kinds for unusable types
            raise TypeError(
                f"cannot build a JSON schema for tool '{tool_name}': {exc}. Use JSON-friendly types "
                "(str, int, float, bool, list, dict, Literal, Enum, pydantic models, dataclasses)"
            ) from exc
        self.schema = clean_schema(schema)

    def _field_name(self, name: str, index: int) -> str:
        # pydantic refuses leading underscores and warns on BaseModel attribute
        # names (``json``, ``copy``...): keep those under an alias.
        if name.startswith("_") or hasattr(BaseModel, name):
            internal = f"param_{index}"
            while internal in self._taken or hasattr(BaseModel, internal):
                internal += "_"  # ``def f(_a, param_0)``: param_0 is a real parameter
            self._taken.add(internal)
            self._aliases[internal] = name
            return internal
        return name

    def _field_info(self, name: str, annotation: Any, param: inspect.Parameter, docstring: DocstringInfo) -> FieldInfo:
        default = ... if param.default is inspect.Parameter.empty else param.default
        description = docstring.params.get(name)
        # A description given with Annotated[..., Field(description=...)] wins
        # over the docstring: pydantic merges it in when the field is built.
        if typing.get_origin(annotation) is typing.Annotated:
            for meta in typing.get_args(annotation)[1:]:
                if isinstance(meta, FieldInfo) and meta.description:
                    description = None
        extra: dict[str, Any] = {}
        if description:
            extra["description"] = description
        if name in self._aliases.values():
            extra["alias"] = name
        return Field(default, **extra)

    def validate(self, arguments: Mapping[str, Any]) -> ValidatedArguments:
        """Validate and coerce ``arguments``; raise ``ArgumentsInvalid`` saying what is wrong."""
        try:
            instance = self.model.model_validate(dict(arguments))
        except ValidationError as exc:
            raise ArgumentsInvalid(_format_pydantic_errors(self.tool_name, exc)) from None
        kwargs = {self._aliases.get(field, field): getattr(instance, field) for field in type(instance).model_fields}
        data = instance.model_dump(mode="json", by_alias=True)
        return ValidatedArguments(kwargs, data)


def _model_name(tool_name: str) -> str:
    return "".join(part.capitalize() for part in tool_name.replace("-", "_").split("_")) or "Tool"


class SchemaArguments:
    """Parameters given as a JSON schema, validated with ``jsonschema``."""

    def __init__(self, schema: Mapping[str, Any] | None, tool_name: str) -> None:
        import jsonschema  # local: only tools from schemas need it

        self.tool_name = tool_name
        self.context_params: list[str] = []
        schema = copy.deepcopy(dict(schema or {}))
        schema.setdefault("type", "object")
        schema.setdefault("properties", {})
        if schema.get("type") != "object":
            raise TypeError(
                f"the parameters schema of tool '{tool_name}' must describe an object "
                f"(\"type\": \"object\"), not {schema.get('type')!r}"
            )
        validator_class = jsonschema.validators.validator_for(schema)
        try:
            validator_class.check_schema(schema)
        except jsonschema.SchemaError as exc:
            hint = ""
            if _legacy_types_in(schema):
                hint = " (it uses type names of older APIs such as 'dict' or 'float': register it with lenient=True to map them)"
            raise TypeError(
                f"the parameters schema of tool '{tool_name}' is not a valid JSON schema: {exc.message}{hint}"
            ) from None
        self.schema = schema
        self._validator = validator_class(schema)

    def validate(self, arguments: Mapping[str, Any]) -> ValidatedArguments:
        data = dict(arguments)
        errors = sorted(self._validator.iter_errors(data), key=lambda e: list(e.absolute_path))
        if errors:
            lines = []
            for err in errors:
                where = ".".join(str(p) for p in err.absolute_path) or "(arguments)"
                lines.append(f"- {where}: {err.message}")
            raise ArgumentsInvalid(
                f"Invalid arguments for tool '{self.tool_name}':\n" + "\n".join(lines)
                + "\nFix the arguments and call the tool again."
            )
        # The function gets its own plain copy (the call's arguments are frozen, being part of a message).
        return ValidatedArguments(thaw(data), copy.deepcopy(data))


# -- lenient import of legacy tool lists --------------------------------------------------

# Type names tool lists written for older APIs use, and the JSON Schema they mean.
LEGACY_TYPES: dict[str, dict[str, Any]] = {
    "dict": {"type": "object"}, "map": {"type": "object"}, "mapping": {"type": "object"}, "obj": {"type": "object"},
    "float": {"type": "number"}, "double": {"type": "number"}, "decimal": {"type": "number"}, "number": {"type": "number"},
    "int": {"type": "integer"}, "long": {"type": "integer"},
    "tuple": {"type": "array"}, "list": {"type": "array"}, "set": {"type": "array"},
    "str": {"type": "string"}, "text": {"type": "string"},
    "bool": {"type": "boolean"},
    "none": {"type": "null"}, "nonetype": {"type": "null"},
    "any": {},
}
_JSON_TYPES = {"object", "array", "string", "number", "integer", "boolean", "null"}
_ALLOWED_NAME_CHARS = re.compile(r"[^A-Za-z0-9_-]+")


def allowed_tool_name(name: str) -> str:
    """``name`` as a tool name every model API accepts (1-64 of ``[A-Za-z0-9_-]``).

    Dots, spaces and other characters become ``_``; a name cut to 64
    characters ends with a short hash of the original, so two long names
    stay apart.  An allowed name comes back unchanged.
    """
    fixed = _ALLOWED_NAME_CHARS.sub("_", name).strip("_") or "tool"
    if len(fixed) > 64:
        digest = hashlib.sha1(name.encode()).hexdigest()[:8]
        fixed = f"{fixed[:55]}_{digest}"
    return fixed


def _legacy_types_in(schema: Any) -> bool:
    found = []

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            kind = node.get("type")
            for k in kind if isinstance(kind, list) else [kind]:
                if isinstance(k, str) and k not in _JSON_TYPES:
                    found.append(k)
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for item in node:
                visit(item)

    visit(schema)
    return bool(found)


def lenient_schema(schema: Mapping[str, Any] | None, where: str = "parameters") -> tuple[dict[str, Any], list[str]]:
    """A legacy parameters schema as JSON Schema, and a sentence per change made.

    Non-standard ``type`` names (``"dict"``, ``"float"``, ``"tuple"``,
    ``"any"`` ...) become their JSON Schema meaning; a type nobody knows
    becomes "any value" (reported); ``required`` entries naming no property
    are dropped.  Keys that name properties are never taken for keywords.
    """
    changes: list[str] = []

    def walk(node: Any, path: str) -> Any:
        if isinstance(node, list):
            return [walk(item, f"{path}[{i}]") for i, item in enumerate(node)]
        if not isinstance(node, dict):
            return node
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key == "type":
                continue
            if key in _SCHEMA_MAPS and isinstance(value, dict):
                out[key] = {name: walk(sub, f"{path}.{name}") for name, sub in value.items()}
            elif key in ("default", "const", "enum", "examples", "required"):
                out[key] = copy.deepcopy(value)
            else:
                out[key] = walk(value, path)
        if "type" in node:
            out.update(_fix_type(node["type"], path, changes))
        required = out.get("required")
        properties = out.get("properties")
        if isinstance(required, list) and isinstance(properties, dict):
            missing = [r for r in required if r not in properties]
            if missing:
                out["required"] = [r for r in required if r in properties]
                changes.append(f"{path}: dropped 'required' entries that name no property: {', '.join(map(str, missing))}")
        return out

    fixed = walk(copy.deepcopy(dict(schema or {})), where)
    if not fixed.get("type"):
        fixed["type"] = "object"
    return fixed, changes


def _fix_type(kind: Any, path: str, changes: list[str]) -> dict[str, Any]:
    kinds = kind if isinstance(kind, list) else [kind]
    json_types: list[str] = []
    anything = False
    for k in kinds:
        if isinstance(k, str) and k in _JSON_TYPES:
            json_types.append(k)
            continue
        mapped = LEGACY_TYPES.get(str(k).strip().lower())
        if mapped is None:
            changes.append(f"{path}: unknown type {k!r} accepted as any value")
            anything = True
        elif not mapped:
            changes.append(f"{path}: type {k!r} mapped to any value")
            anything = True
        else:
            changes.append(f"{path}: type {k!r} mapped to {mapped['type']!r}")
            json_types.append(mapped["type"])
    if anything or not json_types:
        return {}
    unique = list(dict.fromkeys(json_types))
    return {"type": unique[0] if len(unique) == 1 else unique}
