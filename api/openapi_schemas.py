"""Rules the server applies to values, said in the OpenAPI too, so that whatever its schemas allow is
accepted and a generated client or a fuzzer can tell a valid request from an invalid one:

- a request body that refuses unknown fields (`forbid_unknown_fields`, see api/strict_body.py) is an
  object with `additionalProperties: false`;
- a field's constraints are msgspec's, the decoder's own (litestar drops those inside a tuple, a list
  or a dict: a polygon's vertices showed as arrays of any numbers), with a dict's literal keys named;
- a time or a date sent is written in the years 2000-2099 (domain/times.py), a pattern on its text.
"""

from __future__ import annotations

import dataclasses
from datetime import date, datetime
from typing import Any

import msgspec
from litestar._openapi.schema_generation import SchemaCreator
from litestar._openapi.schema_generation.plugins.struct import StructSchemaPlugin
from litestar.openapi.spec import OpenAPIFormat, OpenAPIType, Reference, Schema
from litestar.plugins import OpenAPISchemaPlugin
from litestar.typing import FieldDefinition

from domain.times import WRITTEN_YEARS

TIME_FORMATS = {OpenAPIFormat.DATE_TIME.value, OpenAPIFormat.DATE.value}
# Schema attributes by their JSON name, and which of them hold schemas.
_ATTRIBUTES = {f.metadata.get("alias", f.name): f.name for f in dataclasses.fields(Schema)}
_ONE_SCHEMA = {"items", "additionalProperties", "propertyNames", "not", "contains"}
_SCHEMA_LISTS = {"prefixItems", "anyOf", "oneOf", "allOf"}


class ClosedBodySchemaPlugin(StructSchemaPlugin):
    """Structs as litestar shows them, with what it leaves out of request bodies (those that refuse
    unknown fields) put back: closed to unknown properties, and msgspec's schema for each field without
    a struct, an enum or a time in it (litestar drops constraints inside lists, tuples and dicts, and
    next to UNSET). Answers keep no year pattern on their times: an offer that starts on 1 January 2000
    in Tokyo starts in 1999 in UTC."""

    def to_openapi_schema(self, field_definition: FieldDefinition, schema_creator: SchemaCreator) -> Schema:
        schema = super().to_openapi_schema(field_definition, schema_creator)  # the registered component
        info = msgspec.inspect.type_info(field_definition.type_)
        if not isinstance(info, msgspec.inspect.StructType) or schema.properties is None:
            return schema
        if not info.forbid_unknown_fields:
            for answer in schema.properties.values():
                _without_year_pattern(answer)
            return schema
        schema.additional_properties = False
        hints = field_definition.get_type_hints(include_extras=True, resolve_generics=True)
        for field in info.fields:
            if not _mentions_time(field.type):
                precise = _msgspec_schema(hints[field.name])
                if precise is not None:
                    if field.default is not msgspec.NODEFAULT:
                        precise.default = msgspec.to_builtins(field.default)
                    schema.properties[field.encode_name] = precise
        return schema


class BoundedTimeSchemaPlugin(OpenAPISchemaPlugin):
    """Times and dates: RFC 3339 text in the years the service accepts."""

    def is_plugin_supported_field(self, field_definition: FieldDefinition) -> bool:
        return field_definition.annotation in (datetime, date)

    def to_openapi_schema(self, field_definition: FieldDefinition, schema_creator: SchemaCreator) -> Schema:
        is_time = field_definition.annotation is datetime
        return Schema(
            type=OpenAPIType.STRING,
            format=OpenAPIFormat.DATE_TIME if is_time else OpenAPIFormat.DATE,
            pattern=WRITTEN_YEARS,
        )


def _mentions_time(info: msgspec.inspect.Type) -> bool:
    """Whether a time or date is in the type: litestar shows those (with their pattern, by
    BoundedTimeSchemaPlugin), msgspec's schema leaves an offset-less `datetime` without its format."""
    if isinstance(info, msgspec.inspect.DateTimeType | msgspec.inspect.DateType):
        return True
    if isinstance(info, msgspec.inspect.UnionType):
        return any(_mentions_time(member) for member in info.types)
    if isinstance(info, msgspec.inspect.DictType):
        return _mentions_time(info.key_type) or _mentions_time(info.value_type)
    if isinstance(info, msgspec.inspect.TupleType):
        return any(_mentions_time(item) for item in info.item_types)
    item = getattr(info, "item_type", None)  # lists, sets, tuples of one type
    return isinstance(item, msgspec.inspect.Type) and _mentions_time(item)


def _without_year_pattern(schema: Schema | Reference) -> None:
    if not isinstance(schema, Schema):
        return
    if schema.pattern == WRITTEN_YEARS:
        schema.pattern = None
    for branch in (*(schema.one_of or ()), *(schema.any_of or ())):
        _without_year_pattern(branch)


def _msgspec_schema(annotation: Any) -> Schema | None:
    """msgspec's JSON Schema of a field's type, or None when it would refer to other components."""
    (raw,), components = msgspec.json.schema_components([annotation])
    if components:
        return None
    _name_literal_keys(raw, msgspec.inspect.type_info(annotation))
    return _as_schema(raw)


def _name_literal_keys(raw: dict[str, Any], info: msgspec.inspect.Type) -> None:
    """msgspec leaves a dict's key type out of its schema; `dict[Weekday, ...]` refuses other keys."""
    if isinstance(info, msgspec.inspect.UnionType):
        for branch, member in zip(raw.get("anyOf", []), info.types, strict=False):
            _name_literal_keys(branch, member)
    elif isinstance(info, msgspec.inspect.DictType) and isinstance(
        info.key_type, msgspec.inspect.LiteralType
    ):
        raw["propertyNames"] = {"enum": list(info.key_type.values)}


def _as_schema(raw: dict[str, Any]) -> Schema:
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key in _ONE_SCHEMA and isinstance(value, dict):
            value = _as_schema(value)
        elif key in _SCHEMA_LISTS:
            value = [_as_schema(item) for item in value]
        elif key == "type":
            value = OpenAPIType(value)
        elif key == "format":
            value = _format(value)
        values[_ATTRIBUTES[key]] = value
    if raw.get("format") in TIME_FORMATS:
        values["pattern"] = WRITTEN_YEARS
    return Schema(**values)


def _format(name: str) -> OpenAPIFormat | str:
    try:
        return OpenAPIFormat(name)
    except ValueError:  # a format OpenAPI does not list is still a format
        return name


SCHEMA_PLUGINS = (ClosedBodySchemaPlugin(), BoundedTimeSchemaPlugin())
