"""The demo pages: one self-contained HTML document per function, answered on GET / to browsers.

Each page is a file in static/ whose `<link rel="stylesheet" href="x.css">` and
`<script src="x.js"></script>` tags are replaced by the files' contents when the page is first
served, so the answer is one response with no other asset to fetch (works offline, no CDN).
The Content-Security-Policy allows exactly the page's own inline blocks, by their SHA-256.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import flask

from .http import REQUEST_ID_HEADER

STATIC_DIR = Path(__file__).resolve().parent / "static"
HTML = "text/html"
JSON = "application/json"
_ASSET = re.compile(
    r'<link rel="stylesheet" href="(?P<css>[\w.-]+\.css)">'
    r'|<script src="(?P<js>[\w.-]+\.js)"></script>'
)
_INLINE_BLOCK = re.compile(r"<(script|style)>(.*?)</\1>", re.DOTALL)


@dataclass(frozen=True)
class Page:
    """A demo page ready to answer: its bytes and the policy that lets exactly it run."""

    body: bytes
    content_security_policy: str


def wants_html(request: flask.Request) -> bool:
    """True when the client prefers HTML to JSON (a browser); curl's */* gets JSON."""
    return request.accept_mimetypes.best_match([JSON, HTML]) == HTML


@functools.cache  # instance-wide: each page is read and hashed once per instance
def load_page(name: str) -> Page:
    """Read static/<name>, inline its CSS and JS, and hash every inline block for the CSP."""
    html = _ASSET.sub(_inline, (STATIC_DIR / name).read_text(encoding="utf-8"))
    hashes: dict[str, list[str]] = {"script": [], "style": []}
    for kind, content in _INLINE_BLOCK.findall(html):
        digest = base64.b64encode(hashlib.sha256(content.encode("utf-8")).digest()).decode()
        hashes[kind].append(f"'sha256-{digest}'")
    policy = "; ".join(
        [
            "default-src 'none'",
            "script-src " + (" ".join(hashes["script"]) or "'none'"),
            "style-src " + (" ".join(hashes["style"]) or "'none'"),
            "connect-src 'self'",  # the page calls only its own function
            "img-src 'self' blob: data:",  # blob: previews the chosen photo
            "form-action 'self'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
        ]
    )
    return Page(html.encode("utf-8"), policy)


def page_response(name: str, rid: str) -> flask.Response:
    """The page as `text/html; charset=utf-8` with its CSP and the request id."""
    page = load_page(name)
    response = flask.Response(page.body, status=200, content_type="text/html; charset=utf-8")
    response.headers.update(
        {
            "Content-Security-Policy": page.content_security_policy,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-cache",
            "Vary": "Accept",
            REQUEST_ID_HEADER: rid,
        }
    )
    return response


def _inline(match: re.Match[str]) -> str:
    name = match.group("css") or match.group("js")
    tag = "style" if match.group("css") else "script"
    text = (STATIC_DIR / name).read_text(encoding="utf-8")
    if f"</{tag}" in text.lower():
        raise ValueError(f"static/{name} contains </{tag} and cannot be inlined")
    return f"<{tag}>{text}</{tag}>"
