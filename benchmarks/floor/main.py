"""The floor: an empty function under functions-framework; nothing can answer faster.

    functions-framework --source benchmarks/floor/main.py --target empty
"""

from __future__ import annotations

import flask
import functions_framework

# The same answer for every request, built once for the instance.
ANSWER = b'{"ok": true}'


@functions_framework.http
def empty(request: flask.Request) -> flask.Response:
    """Read the body, answer a constant JSON object."""
    request.get_data()
    return flask.Response(ANSWER, status=200, mimetype="application/json")
