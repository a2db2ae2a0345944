"""Request bodies checked against precompiled JSON Schemas, reporting every error at once."""

import json
import re
import urllib.parse

import falcon
import jsonschema
from jsonschema import Draft202012Validator

from api.errors import Problem, ValidationFailed

JSON = "application/json"
MERGE_PATCH = "application/merge-patch+json"


def _is_integer(checker, instance):
    # NOTE: JSON Schema counts 1.0 as an integer; PostgreSQL's bigint parameters must not see it.
    return isinstance(instance, int) and not isinstance(instance, bool)


def _pattern(validator, pattern, instance, schema):
    # NOTE: ECMA-262's `$` is the end of the string; Python's also matches before a final "\n".
    anchored = pattern[:-1] + r"\Z" if pattern.endswith("$") else pattern
    if validator.is_type(instance, "string") and not re.search(anchored, instance):
        yield jsonschema.ValidationError(f"does not match {pattern!r}")


Validator = jsonschema.validators.extend(
    Draft202012Validator,
    validators={"pattern": _pattern},
    type_checker=Draft202012Validator.TYPE_CHECKER.redefine("integer", _is_integer),
)


def compile_schema(schema):
    Validator.check_schema(schema)
    return Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def body_reader(schema, optional=False):
    """An async function of the request: its body, parsed and valid, or a 415/422 problem.
    With `optional`, a request without a body counts as `{}`."""
    validator = compile_schema(schema)

    async def read_body(req):
        if optional and not req.content_length and req.content_type is None:
            return {}
        media_type = (req.content_type or "").split(";")[0].strip().lower()
        if media_type != JSON and not (media_type == MERGE_PATCH and req.method == "PATCH"):
            raise Problem(falcon.HTTP_415, f"Send the body as {JSON}.")
        body = await req.get_media()
        errors = [
            *text_errors(body),
            *(item for error in validator.iter_errors(body) for item in _describe(error)),
        ]
        if errors:
            raise ValidationFailed(_unique(errors))
        return body

    return read_body


def text_errors(value, path=()):
    """Strings PostgreSQL cannot store: NUL characters and lone UTF-16 surrogates."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from text_errors(key, path + (key,))
            yield from text_errors(item, path + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from text_errors(item, path + (index,))
    elif isinstance(value, str):
        if "\x00" in value:
            yield {"pointer": pointer(path), "detail": "must not contain NUL characters"}
        elif not _is_utf8(value):
            yield {"pointer": pointer(path), "detail": "must be valid Unicode text"}


def _is_utf8(text):
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def pointer(path):
    """A JSON Pointer as a URI fragment, e.g. ('category_ids', 2) -> '#/category_ids/2'."""
    tokens = (str(p).replace("~", "~0").replace("/", "~1") for p in path)
    return "#" + "".join(
        "/" + urllib.parse.quote(t, safe="~!$&'()*+,;=:@", errors="surrogatepass") for t in tokens
    )


def _describe(error):
    path = tuple(error.absolute_path)
    keyword, expected = error.validator, error.validator_value
    if keyword == "required":
        missing = [name for name in expected if name not in error.instance]
        return [{"pointer": pointer(path + (name,)), "detail": "is required"} for name in missing]
    if keyword == "additionalProperties":
        known = error.schema.get("properties", {})
        return [
            {"pointer": pointer(path + (name,)), "detail": "is not an allowed member"}
            for name in error.instance
            if name not in known
        ]
    return [{"pointer": pointer(path), "detail": _message(keyword, expected)}]


def _message(keyword, expected):
    messages = {
        "type": lambda: "must be " + " or ".join([expected] if isinstance(expected, str) else expected),
        "enum": lambda: "must be one of: " + ", ".join(map(str, expected)),
        "minLength": lambda: f"must be at least {expected} characters long",
        "maxLength": lambda: f"must be at most {expected} characters long",
        "minimum": lambda: f"must be at least {expected}",
        "maximum": lambda: f"must be at most {expected}",
        "maxItems": lambda: f"must have at most {expected} items",
        "minItems": lambda: f"must have at least {expected} items",
        "const": lambda: f"must be {json.dumps(expected)}",
        "format": lambda: f"must be a valid {expected}",
        "uniqueItems": lambda: "must not repeat an item",
        "pattern": lambda: f"must match {expected}" if expected != r"\S" else "must not be blank",
    }
    return messages.get(keyword, lambda: "is not valid")()


def _unique(errors):
    """`required` and `additionalProperties` report each member once per failing keyword."""
    return list({(e["pointer"], e["detail"]): e for e in errors}.values())
