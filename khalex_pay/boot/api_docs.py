"""docs/API.md, the shop developer's reference, written from the API's own OpenAPI document.

`uv run python -m scripts.api_docs` writes it; `--check` exits 1 when the file differs from
what the document says now (tests/unit/test_api_docs.py runs it). The prose is the
document's description (api/openapi_docs.py `OVERVIEW`); each endpoint, error code and
schema section is rendered from the document itself, so the two cannot drift apart.
"""

from __future__ import annotations

import inspect
import json
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import msgspec

from api import answers
from api.app import create_app
from api.openapi_docs import ERROR_CODES, INVALID_PHONE
from payments.container import Container
from plumbing.settings import Settings
from store.db import make_engine

#: Where the reference lives in the repository.
TARGET = Path(__file__).resolve().parents[2] / "docs" / "API.md"
#: Sections in this order; operations keep the order the app declares them in.
TAGS = (("payments", "Payments"), ("orders", "Orders"), ("health", "Health"),
        ("operations", "Operations"))  # fmt: skip
_METHODS = ("get", "post", "put", "patch", "delete")
_SCHEME_NAMES = {
    "shopApiKey": "shop API key",
    "checkoutToken": "checkout token",
    "operatorToken": "operator token",
    "metricsToken": "METRICS_TOKEN",
}

Json = Mapping[str, Any]


def openapi() -> dict[str, Any]:
    """The document `/schema/openapi.json` serves, from the app with default settings."""
    container = Container(Settings(), make_engine("sqlite://"), lambda _: None)
    app = create_app(container)
    # As served: examples are Structs (so that their nulls are kept) until encoded.
    document: dict[str, Any] = msgspec.to_builtins(app.openapi_schema.to_schema())
    return document


def render(doc: Json) -> str:
    """docs/API.md for `doc`."""
    lines = [
        f"# {doc['info']['title']} HTTP API",
        "",
        "<!-- Generated from the OpenAPI document (/schema/openapi.json) by"
        " `uv run python -m scripts.api_docs`: edit api/openapi_docs.py, api/answers.py or"
        " the handlers, not this file. -->",
        "",
        doc["info"].get("description", "").rstrip(),
        "",
        *_contents(doc),
        *_endpoints(doc),
        *_errors(),
        *_schemas(doc),
    ]
    return "\n".join(lines).rstrip() + "\n"


def _operations(doc: Json, tag: str) -> Iterator[tuple[str, str, Json]]:
    for path, item in doc["paths"].items():
        for method in _METHODS:
            operation = item.get(method)
            if operation and tag in operation.get("tags", ()):
                yield method.upper(), path, operation


def _anchor(text: str) -> str:
    kept = "".join(c for c in text.lower() if c.isalnum() or c in " -_")
    return kept.replace(" ", "-")


def _heading(method: str, path: str) -> str:
    return f"{method} {path}"


def _contents(doc: Json) -> list[str]:
    lines = ["## Endpoints", ""]
    for tag, title in TAGS:
        for method, path, operation in _operations(doc, tag):
            heading = _heading(method, path)
            summary = _first_line(operation.get("description", ""))
            lines.append(f"- [`{heading}`](#{_anchor(heading)}) ({title.lower()}): {summary}")
    lines += ["", "Then: [errors](#errors), [schemas](#schemas).", ""]
    return lines


def _first_line(text: str) -> str:
    return text.strip().split("\n\n")[0].replace("\n", " ")


def _endpoints(doc: Json) -> list[str]:
    lines: list[str] = []
    for tag, title in TAGS:
        lines += [f"## {title}", ""]
        for method, path, operation in _operations(doc, tag):
            lines += _operation(doc, method, path, operation)
    return lines


def _operation(doc: Json, method: str, path: str, operation: Json) -> list[str]:
    lines = [f"### {_heading(method, path)}", "", operation.get("description", "").strip(), ""]
    lines += [f"**Who may call:** {_who(operation.get('security', []))}", ""]
    lines += _parameters(operation.get("parameters", []))
    body = operation.get("requestBody")
    if body:
        lines += _request_body(doc, body)
    lines += _responses(operation["responses"])
    return lines


def _who(security: Sequence[Json]) -> str:
    if not security:
        return "anyone (no credentials)."
    names = [
        " and ".join(_SCHEME_NAMES.get(name, name) for name in requirement) or "anyone"
        for requirement in security
    ]
    return ", ".join(names[:-1]) + (" or " if len(names) > 1 else "") + names[-1] + "."


def _parameters(parameters: Sequence[Json]) -> list[str]:
    if not parameters:
        return []
    lines = ["| parameter | in | type | required | description |", "|---|---|---|---|---|"]
    for p in parameters:
        lines.append(
            f"| `{p['name']}` | {p['in']} | {_type(p.get('schema', {}))} | "
            f"{'yes' if p.get('required') else 'no'} | {_cell(_parameter_notes(p))} |"
        )
    return [*lines, ""]


def _parameter_notes(parameter: Json) -> str:
    notes = _notes(parameter.get("schema", {}))
    return "; ".join(n for n in (parameter.get("description", "").rstrip("."), notes) if n)


def _request_body(doc: Json, body: Json) -> list[str]:
    media = body["content"]["application/json"]
    lines = [f"**Body** (JSON): {body.get('description', '')}", ""]
    schema = media["schema"]
    for option in schema.get("anyOf", [schema]):
        lines += _fields(option, doc)
    for name, example in (media.get("examples") or {}).items():
        lines += [f"Example ({name}):", "", "```json", _json(example["value"]), "```", ""]
    return lines


def _responses(responses: Json) -> list[str]:
    lines = ["| status | answer | headers | when |", "|---|---|---|---|"]
    examples: list[str] = []
    for status, response in sorted(responses.items()):
        content: Json = response.get("content") or {}
        media_type, media = next(iter(content.items()), ("", {}))
        media = dict(media)
        answer = _type(media.get("schema", {})) if media_type == "application/json" else media_type
        headers = ", ".join(
            f"`{name}`" + ("" if header.get("required") else " (sometimes)")
            for name, header in (response.get("headers") or {}).items()
        )
        lines.append(f"| {status} | {answer} | {headers} | {_cell(response['description'])} |")
        if status.startswith("2"):
            for example in (media.get("examples") or {}).values():
                examples += _example(status, media_type, example)
    return [*lines, "", *examples]


def _example(status: str, media_type: str, example: Json) -> list[str]:
    value = example["value"]
    fence = "json" if media_type == "application/json" else "text"
    text = _json(value) if fence == "json" else str(value).rstrip()
    return [f"Answer {status} ({example.get('summary', 'example')}):", "", f"```{fence}", text,
            "```", ""]  # fmt: skip


def _errors() -> list[str]:
    lines = [
        "## Errors",
        "",
        "Every error answers the same envelope, whatever the endpoint:",
        "",
        "```json",
        _json({"error": {"code": "invalid_phone_number",
                         "message": INVALID_PHONE,
                         "field": "phoneNumber"}}),
        "```",
        "",
        "`code` is stable (switch on it); `message` is for people; `field` names the first bad",
        "field of the request, or is null. Some errors add keys, named below.",
        "",
        "| status | code | meaning |",
        "|---|---|---|",
    ]  # fmt: skip
    for code, (status, meaning) in sorted(ERROR_CODES.items(), key=lambda c: (c[1][0], c[0])):
        lines.append(f"| {status} | `{code}` | {_cell(meaning)} |")
    return [*lines, ""]


def _schemas(doc: Json) -> list[str]:
    lines = ["## Schemas", ""]
    for name, schema in sorted(doc["components"]["schemas"].items()):
        lines += [f"### {name}", ""]
        # Litestar leaves a Struct's docstring out of its schema.
        struct = getattr(answers, name, None)
        about = inspect.cleandoc(struct.__doc__) if struct and struct.__doc__ else None
        lines += _fields({**schema, "description": schema.get("description") or about}, doc)
    return lines


def _fields(schema: Json, doc: Json) -> list[str]:
    lines = []
    if schema.get("description"):
        lines += [_cell(schema["description"]), ""]
    required = set(schema.get("required", ()))
    lines += ["| field | type | required | notes |", "|---|---|---|---|"]
    for field, spec in (schema.get("properties") or {}).items():
        yes = "yes" if field in required else "no"
        lines.append(f"| `{field}` | {_type(spec)} | {yes} | {_cell(_notes(spec))} |")
    return [*lines, ""]


def _notes(spec: Json) -> str:
    inner = next((s for s in spec.get("anyOf", spec.get("oneOf", [])) if s.get("type") != "null"),
                 spec)  # fmt: skip
    notes = []
    description = spec.get("description") or inner.get("description")
    if description:
        notes.append(description.rstrip("."))
    bounds = [("minimum", "≥ {}"), ("maximum", "≤ {}"), ("minLength", "{}+ characters"),
              ("maxLength", "at most {} characters"), ("minItems", "{}+ items"),
              ("maxItems", "at most {} items")]  # fmt: skip
    notes += [text.format(_number(inner[key])) for key, text in bounds if key in inner]
    if "default" in spec:
        notes.append(f"default {json.dumps(spec['default'])}")
    return "; ".join(notes)


def _number(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() else str(value)


def _type(schema: Json) -> str:
    """`schema`'s type in a few words: a link for a named schema, `a or b` for a union."""
    if "$ref" in schema:
        name = schema["$ref"].rpartition("/")[2]
        return f"[{name}](#{_anchor(name)})"
    options = schema.get("oneOf") or schema.get("anyOf")
    if options:
        return " or ".join(_type(option) for option in options)
    if "const" in schema:
        return f"`{json.dumps(schema['const'])}`"
    if "enum" in schema:
        return " \\| ".join(f"`{json.dumps(v)}`" for v in schema["enum"])
    return _plain_type(schema)


def _plain_type(schema: Json) -> str:
    kind = schema.get("type", "any")
    if isinstance(kind, list):
        return " or ".join(kind)
    if kind == "array":
        return f"array of {_type(schema.get('items', {}))}"
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        return f"object of {_type(schema['additionalProperties'])}"
    return str(kind)


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _json(value: object) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


def main(argv: Sequence[str] = ()) -> int:
    """Write docs/API.md; with `--check`, only say whether it is up to date (exit 1 if not)."""
    text = render(openapi())
    if "--check" in argv:
        current = TARGET.read_text(encoding="utf-8") if TARGET.exists() else ""
        if current != text:
            print(f"{TARGET.name} is stale: run `uv run python -m scripts.api_docs`.")  # noqa: T201
            return 1
        return 0
    TARGET.write_text(text, encoding="utf-8")
    print(f"wrote {TARGET.relative_to(TARGET.parents[1])}")  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
