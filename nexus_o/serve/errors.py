"""Errors in the OpenAI shape: `{"error": {"message", "type", "param", "code"}}` with a fitting status.

Status codes used by the server:

| status | type                  | when                                                          |
|--------|-----------------------|---------------------------------------------------------------|
| 400    | invalid_request_error | malformed JSON, schema errors, bad media, text that cannot be |
|        |                       | tokenized, limits on content; a prompt over the context or    |
|        |                       | max_prompt_tokens: code context_length_exceeded               |
| 404    | invalid_request_error | unknown model or route                                        |
| 408    | invalid_request_error | the client took longer than body_read_timeout to send the body |
| 413    | invalid_request_error | body over max_body_bytes (checked before parsing)             |
| 429    | rate_limit_error      | the request queue is full                                     |
| 499    | invalid_request_error | the client closed the connection (nobody reads it; for logs)  |
| 500    | server_error          | anything unexpected (logged server-side; generic message)     |
| 503    | server_error          | the request waited longer than max_queue_wait for the model   |
| 504    | timeout_error         | no complete reply within request_timeout                      |

Bad input is never a 500, and no stack trace ever reaches the client.
"""

from __future__ import annotations

import json
import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("nexus_o.serve")


class AsciiJSONResponse(JSONResponse):
    """JSON with non-ASCII escaped: an error message may quote client text, which may hold lone
    surrogates that cannot be encoded as UTF-8 (escaped, they are valid JSON)."""

    def render(self, content) -> bytes:
        return json.dumps(content, ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode("ascii")


class ApiError(Exception):
    """An error the client should see: HTTP status + the OpenAI error fields."""

    def __init__(self, status: int, message: str, *, type: str = "invalid_request_error",
                 param: str | None = None, code: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type, param, code
        self.headers = headers

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def response(self) -> JSONResponse:
        return AsciiJSONResponse(self.body(), status_code=self.status, headers=self.headers)


def bad_request(message: str, param: str | None = None, code: str | None = None) -> ApiError:
    """A 400 invalid_request_error."""
    return ApiError(400, message, param=param, code=code)


_TYPE_LABELS = {"str", "int", "float", "bool", "dict", "list", "none"}


def param_path(loc: tuple | list) -> str | None:
    """Pydantic location -> OpenAI-style param: ("body", "messages", 0, "content") -> messages[0].content.

    Union branch labels pydantic adds ("str", "list[...]") are dropped, and so is the tag a
    tagged union repeats after the list index.
    """
    out, skip_tag = "", False
    for item in loc:
        if isinstance(item, int):
            out += f"[{item}]"
            continue
        item = str(item)
        if (item == "body" and not out) or item in _TYPE_LABELS or "[" in item:
            skip_tag = skip_tag or "tagged-union" in item
            continue
        if skip_tag:
            skip_tag = False
            continue
        out += ("." if out else "") + item
    return out or None


def _validation_error(exc: RequestValidationError) -> ApiError:
    errors = exc.errors()
    # the most specific error: with unions, the deepest location names the real problem
    first = max(errors, key=lambda e: len(e.get("loc", ()))) if errors else {"loc": (), "msg": "invalid request"}
    param = param_path(first.get("loc", ()))
    kind = first.get("type", "")
    if kind == "json_invalid" or param is None:
        return bad_request(f"the request body is not a valid JSON object: {first.get('msg', '')}",
                           code="invalid_json")
    if kind == "model_attributes_type":
        return bad_request(f"{param}: expected a JSON object", param=param, code="invalid_value")
    if kind == "extra_forbidden":
        return bad_request(f"unrecognized request argument supplied: {param}", param=param,
                           code="unknown_parameter")
    if kind == "union_tag_not_found":
        return bad_request(f"{param}: a content part needs a 'type'", param=f"{param}.type",
                           code="invalid_content_part")
    if kind == "too_short" and (first.get("ctx") or {}).get("min_length") == 1:
        return bad_request(f"{param} is an empty array; expected at least one item", param=param,
                           code="empty_array")
    if kind == "union_tag_invalid":
        tag = (first.get("ctx") or {}).get("tag")
        return bad_request(f"{param}: unknown content part type {tag!r}; expected one of "
                           f"{(first.get('ctx') or {}).get('expected_tags')}", param=f"{param}.type",
                           code="invalid_content_part")
    return bad_request(f"{param}: {first.get('msg', 'invalid value')}", param=param, code="invalid_value")


def install_error_handlers(app: FastAPI) -> None:
    """Route every error through the OpenAI shape; unexpected ones are logged, not shown."""

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError):
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError):
        return _validation_error(exc).response()

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        if exc.status_code == 404:
            return ApiError(404, f"no route {request.method} {request.url.path}", code="not_found").response()
        if exc.status_code == 400:  # FastAPI could not parse the body (invalid UTF-8, nesting too deep, ...)
            return bad_request(f"the request body is not valid JSON ({exc.detail})", code="invalid_json").response()
        if exc.status_code == 405:
            return ApiError(405, f"method {request.method} is not allowed on {request.url.path}",
                            code="method_not_allowed").response()
        return ApiError(exc.status_code, str(exc.detail)).response()

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return ApiError(500, "the server had an internal error while processing the request",
                        type="server_error", code="internal_error").response()
