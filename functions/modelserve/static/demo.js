/* Shared by the demo pages (inlined by pages.py): the function's URLs, JSON calls, status lines. */
"use strict";
const demo = (() => {
  // The page is the function's root; deployed, that root may sit below a path (/predict_mpg).
  const endpoint = location.origin + location.pathname;
  const url = (path) => endpoint.replace(/\/?$/, "/") + path;

  /** Any answer as {status, body, retryAfter}; a network failure is status 0 with a message. */
  async function call(target, options = {}) {
    let response;
    try {
      response = await fetch(target, { cache: "no-store", ...options,
        headers: { Accept: "application/json", ...(options.headers || {}) } });
    } catch (error) {
      return { status: 0, retryAfter: 0,
        body: { errors: [{ field: null, message: `Cannot reach the function (${error.message}).` }] } };
    }
    let body;
    try {
      body = await response.json();
    } catch {
      body = { errors: [{ field: null, message: `Unexpected answer: HTTP ${response.status}.` }] };
    }
    return { status: response.status, body, retryAfter: Number(response.headers.get("Retry-After")) || 0 };
  }

  /** The messages of an error envelope, as one line. */
  const messages = (body) => (body.errors || []).map((e) => e.message).join(" ");

  /** Set a status line (an aria-live region, always in the page): kind "", "busy" or "error". */
  function say(element, text, kind = "") {
    element.textContent = text;
    element.dataset.kind = kind;
  }

  /** Create an element with attributes and children (text or nodes). */
  function el(tag, attributes = {}, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
    node.append(...children);
    return node;
  }

  /**
   * Fetch GET / as JSON (this loads the model) and hand the metadata to `ready`. While the model
   * is unavailable, show the function's 503 message and try again after its Retry-After.
   */
  async function metadata(status, ready, first = true) {
    if (first) say(status, "Loading the model…", "busy");
    const meta = await call(endpoint);
    if (meta.status === 200 && meta.body.input) {
      say(status, "");
      ready(meta.body);
      return;
    }
    // GET / names the state; /openapi.json answers the 503 itself, with Retry-After.
    const probe = meta.status === 200 ? await call(url("openapi.json")) : meta;
    if (probe.status !== 200) {
      say(status, `${messages(probe.body)} Trying again automatically.`, "error");
    }
    const wait = Math.min(Math.max(probe.retryAfter, 1), 60);
    setTimeout(() => metadata(status, ready, false), wait * 1000);
  }

  /** Fill the footer with the model's name, version and the API's URLs. */
  function describe(footer, meta) {
    const openapi = el("a", { href: url("openapi.json") }, "OpenAPI document");
    footer.replaceChildren(
      `Model ${meta.model.name}, version ${meta.model.version}. API: POST to `,
      el("code", {}, endpoint), "; ", openapi, ".");
  }

  return { endpoint, url, call, messages, say, el, metadata, describe };
})();
