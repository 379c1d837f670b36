"""Strict JSON parsing of request bodies: what the lesson's `request.get_json()` let through."""

from __future__ import annotations

import json
import re
from typing import Any

from .errors import BadRequest
from .http import escape_for_message

# Integers longer than this become infinities, so validation reports them as not finite
# instead of Python spending time on (or refusing) thousands of digits.
MAX_INTEGER_DIGITS = 30
# Only a body with such a run of digits needs the (slower) decoder that bounds integers.
_LONG_DIGIT_RUN = re.compile(rb"[0-9]{%d}" % (MAX_INTEGER_DIGITS + 1))


def parse_json(body: bytes) -> Any:
    """Decode a UTF-8 JSON document; 400 for malformed JSON, duplicate keys, NaN or Infinity."""
    if not body.strip():
        raise BadRequest("invalid_json", "Malformed JSON: the body is empty.")
    decoder = _BOUNDED_DECODER if _LONG_DIGIT_RUN.search(body) else _DECODER
    try:
        return decoder.decode(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise BadRequest("invalid_json", "Malformed JSON: the body is not UTF-8.") from None
    except json.JSONDecodeError as exc:
        raise BadRequest(
            "invalid_json", f"Malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}."
        ) from None
    except RecursionError:
        raise BadRequest("invalid_json", "Malformed JSON: nested too deeply.") from None


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) < len(pairs):  # some key came twice: name the first repeated one
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                name = escape_for_message(key)
                raise BadRequest("duplicate_field", f"Duplicate field: {name}.", name)
            seen.add(key)
    return result


def _reject_constant(name: str) -> Any:
    raise BadRequest("invalid_json", f"Malformed JSON: {name} is not a JSON number.")


def _parse_int(text: str) -> int | float:
    if len(text.lstrip("-")) > MAX_INTEGER_DIGITS:
        return float("-inf") if text.startswith("-") else float("inf")
    return int(text)


# Built once (json.loads with hooks would build one per call). _DECODER parses integers in C;
# _BOUNDED_DECODER turns integers of more than MAX_INTEGER_DIGITS digits into infinities.
_DECODER = json.JSONDecoder(object_pairs_hook=_reject_duplicates, parse_constant=_reject_constant)
_BOUNDED_DECODER = json.JSONDecoder(
    object_pairs_hook=_reject_duplicates, parse_constant=_reject_constant, parse_int=_parse_int
)
