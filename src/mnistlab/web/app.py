"""The FastAPI app: the drawing page, its static files and the JSON API (with an OpenAPI schema at /docs).

``create_app(weights, runs_dir)`` builds it. ``POST /api/predict`` takes a drawing (0 = background,
255 = ink, each side 28 to 1024) in one of two JSON forms, or a PNG/JPEG photo as the multipart field
``image``, and answers the digit, the 10 probabilities and the 28x28 image the model saw:

- ``{"width": W, "height": H, "data": "<base64>", "encoding": "deflate"}``, the compact form the page
  sends: ``data`` is the standard base64 (RFC 4648, with ``=`` padding, no line breaks) of W*H bytes,
  one unsigned byte per pixel, row by row from the top left; with ``"encoding": "deflate"`` those bytes
  are zlib-compressed first (RFC 1950, what a browser's ``CompressionStream("deflate")`` writes), and
  without it (or with ``"raw"``) they are sent as they are. A 280x280 drawing is about 1.5 kB deflated,
  105 kB raw. These fields and no others; W and H integers. The page sends only the box of its ink
  (``drawing.ink_crop``: pixels > 0, at least 28 px a side), which reads the same as the whole canvas.
- ``{"pixels": [[...], ...]}``: rows of numbers 0..255. Easy to write by hand, but about ten times
  slower to read (JSON numbers and nested lists).

Every bad request gets a 4xx with a message in ``detail``; ``?model=`` picks a model under runs/.
"""

import base64
import binascii
import json
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import fastapi_offline
import numpy as np
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from ..data import drawing
from ..errors import InputError
from .batching import Batcher
from .models import Catalogue, UnknownModel

STATIC = Path(__file__).resolve().parent / "static"
DOCS_ASSETS = Path(fastapi_offline.__file__).resolve().parent / "static"  # swagger-ui-bundle.js, .css
DOCS_ASSETS_URL = "/docs-assets"
MAX_BODY_BYTES = 8 * 1024 * 1024  # a phone photo fits; a 1024x1024 JSON canvas of "255," fits
MIN_SIDE, MAX_SIDE = 28, 1024
MODEL_HELP = "a model file's path relative to the runs folder, as listed by /api/models (default: the served model)"


class ModelInfo(BaseModel):
    name: str = Field(description="path relative to the runs folder (or the --weights path)")
    default: bool
    sizes: list[int] | None = Field(description="layer sizes of an all-dense network, e.g. [784, 800, 800, 10]; "
                                    "null for any other")
    arch: str = Field(description="the architecture spec, e.g. fc800-fc800 (the final fc10 implied)")
    activation: str
    parameters: int
    test_accuracy: float | None = Field(description="accuracy on the test set when trained, 0..1")
    epochs: int | None
    data: str | None = Field(description="what it was trained on")
    seed: int | None
    members: list["ModelInfo"] | None = Field(None, description="a committee's members (it reads a digit by the "
                                              "mean of their probabilities); null for a single model")
    pretrained: str | None = Field(None, description="the model shipped with mnistlab: the study, configuration "
                                   "and seed it comes from; null for any other")


class Prediction(BaseModel):
    digit: int | None = Field(description="0-9, or null when nothing is drawn")
    probabilities: list[float] = Field(description="10 class probabilities (all 0 when nothing is drawn)")
    input28: list[list[int]] = Field(description="the 28x28 image the model saw, 0..255")
    model: str


COMPACT_FIELDS = ("width", "height", "data")  # and, optionally, "encoding"
ENCODINGS = ("raw", "deflate")
PIXELS_SCHEMA = {
    "title": "pixels", "type": "object", "required": ["pixels"], "additionalProperties": False,
    "properties": {"pixels": {
        "type": "array", "items": {"type": "array", "items": {"type": "number", "minimum": 0, "maximum": 255}},
        "description": f"grayscale canvas, rows of columns, {MIN_SIDE}x{MIN_SIDE} to {MAX_SIDE}x{MAX_SIDE}; "
                       "0 = background, 255 = ink"}}}
COMPACT_SCHEMA = {
    "title": "compact", "type": "object", "required": list(COMPACT_FIELDS), "additionalProperties": False,
    "properties": {
        "width": {"type": "integer", "minimum": MIN_SIDE, "maximum": MAX_SIDE, "description": "canvas columns"},
        "height": {"type": "integer", "minimum": MIN_SIDE, "maximum": MAX_SIDE, "description": "canvas rows"},
        "data": {"type": "string", "format": "byte",
                 "description": "standard base64 (with = padding) of width*height bytes, row-major from the "
                                "top left, one unsigned byte per pixel: 0 = background, 255 = ink; "
                                "zlib-compressed first when encoding is deflate"},
        "encoding": {"type": "string", "enum": list(ENCODINGS), "default": "raw",
                     "description": "deflate: data holds the zlib stream (RFC 1950) of the bytes"}}}
PREDICT_BODY = {"parameters": [{"name": "model", "in": "query", "required": False, "description": MODEL_HELP,
                                 "schema": {"type": "string"}}],
                "requestBody": {"required": True, "content": {
    "application/json": {"schema": {"oneOf": [COMPACT_SCHEMA, PIXELS_SCHEMA]}},
    "multipart/form-data": {"schema": {
        "type": "object", "required": ["image"],
        "properties": {"image": {"type": "string", "format": "binary",
                                 "description": "PNG or JPEG photo or scan of one digit on paper"}}}}}}}


def fail(status, message):
    raise HTTPException(status_code=status, detail=message)


async def read_body(request):
    """The request body, refused with 413 past MAX_BODY_BYTES (before reading it when the size is declared)."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY_BYTES):
        fail(413, f"request body over the {MAX_BODY_BYTES // (1024 * 1024)} MB limit")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            fail(413, f"request body over the {MAX_BODY_BYTES // (1024 * 1024)} MB limit")
        chunks.append(chunk)
    return b"".join(chunks)


def canvas_from_json(body):
    """The (h, w) canvas of a JSON body in either form (compact or pixels), or a 422 saying what is wrong."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        fail(422, "body: not valid JSON")
    if isinstance(data, dict) and "pixels" in data:
        extra = sorted(key for key in data if key != "pixels")
        if extra:  # as the compact form: a misspelt or unknown field is an error, not ignored
            fail(422, "body: the pixels form has the one field pixels; unexpected: "
                      + ", ".join(repr(k[:40]) for k in extra[:5]))
        return canvas_from_pixels(data["pixels"])
    if isinstance(data, dict) and any(key in data for key in COMPACT_FIELDS):
        return canvas_from_compact(data)
    fail(422, 'body: expected a JSON object {"width": W, "height": H, "data": "<base64 of W*H bytes>"} '
              'or {"pixels": [[...], ...]}')


def canvas_from_compact(data):
    """The (h, w) uint8 canvas of ``{"width": W, "height": H, "data": "<base64>"}``, or a 422."""
    missing = [key for key in COMPACT_FIELDS if key not in data]
    extra = sorted(key for key in data if key not in (*COMPACT_FIELDS, "encoding"))
    if missing or extra:
        fail(422, "body: the compact form has the fields width, height, data and, optionally, encoding"
                  + (f"; missing: {', '.join(missing)}" if missing else "")
                  + (f"; unexpected: {', '.join(repr(k[:40]) for k in extra[:5])}" if extra else ""))
    width, height, text, encoding = data["width"], data["height"], data["data"], data.get("encoding", "raw")
    for name, side in (("width", width), ("height", height)):
        if type(side) is not int:  # not bool, not 28.0
            fail(422, f"{name}: expected an integer from {MIN_SIDE} to {MAX_SIDE}")
        if not MIN_SIDE <= side <= MAX_SIDE:
            fail(422, f"{name}: {side} pixels; each side must be {MIN_SIDE} to {MAX_SIDE}")
    if encoding not in ENCODINGS:
        fail(422, f"encoding: expected one of {', '.join(map(repr, ENCODINGS))}")
    if not isinstance(text, str):
        fail(422, "data: expected a base64 string")
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):  # a character outside the alphabet, bad padding, non-ASCII
        fail(422, "data: not valid base64 (standard alphabet A-Z a-z 0-9 + /, with = padding)")
    if encoding == "deflate":
        stream = zlib.decompressobj()
        try:  # at most one byte more than the canvas holds: a zip bomb stops there
            raw = stream.decompress(raw, width * height + 1)
        except zlib.error:
            fail(422, "data: not a zlib (deflate) stream")
        if not stream.eof and len(raw) <= width * height:
            fail(422, "data: the zlib (deflate) stream is cut short")
        if stream.unused_data:
            fail(422, f"data: {len(stream.unused_data)} bytes after the end of the zlib (deflate) stream")
    if len(raw) != width * height:
        fail(422, f"data: {len(raw)} bytes for a {width}x{height} canvas; expected width*height = {width * height}")
    return np.frombuffer(raw, np.uint8).reshape(height, width)


def canvas_from_pixels(pixels):
    """The (h, w) canvas of the rows of ``{"pixels": [[...]]}``, or a 422."""
    if not isinstance(pixels, list) or not pixels or not all(isinstance(row, list) for row in pixels):
        fail(422, "pixels: expected a list of rows, each a list of numbers")
    try:
        canvas = np.array(pixels)
    except (ValueError, TypeError, OverflowError, RecursionError):
        fail(422, "pixels: rows must all have the same length and hold only numbers")
    if canvas.ndim != 2 or canvas.dtype.kind not in "iuf":  # bool, null, strings, nested lists
        fail(422, "pixels: rows must all have the same length and hold only numbers")
    h, w = canvas.shape
    if not (MIN_SIDE <= h <= MAX_SIDE and MIN_SIDE <= w <= MAX_SIDE):
        fail(422, f"pixels: a {h}x{w} canvas; each side must be {MIN_SIDE} to {MAX_SIDE}")
    return canvas


async def image_from_form(request, body):
    """The bytes of the multipart field ``image``, or a 4xx."""
    async def replay():
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        form = await Request(request.scope, replay).form(max_files=1, max_fields=10, max_part_size=MAX_BODY_BYTES)
    except Exception as e:  # python-multipart's and Starlette's parse errors have no common base  # noqa: BLE001
        fail(422, f"body: not a readable multipart form ({e.__class__.__name__})")
    upload = form.get("image")
    if upload is None or isinstance(upload, str):
        fail(422, "image: expected a file in the multipart field 'image'")
    return await upload.read()


NUMBERS = np.array([str(v) for v in range(256)], dtype=object)


async def answer(batcher, model, image28):
    """The Prediction as a JSON response, the image read by ``model`` through ``batcher`` (batching.py). The
    784 pixels are written from a table of their texts, indexed by the image as an object array: json.dumps
    took 72 us for them (the whole request, about 0.8 ms), a Python loop over a list table 34-50 us, the
    object array 18-20 us."""
    if image28 is None:  # nothing drawn: no guess
        digit, probabilities, image28 = None, np.zeros(10), np.zeros((drawing.SIZE, drawing.SIZE), np.uint8)
    else:
        digit, probabilities = await batcher.predict(model.model, image28)
    rest = json.dumps({"digit": digit, "probabilities": [float(p) for p in probabilities], "model": model.name},
                      ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    rows = "],[".join([",".join(row) for row in NUMBERS[image28].tolist()])
    return Response(rest[:-1] + ',"input28":[[' + rows + "]]}", media_type="application/json")


def add_offline_docs(app):
    """/docs (Swagger UI) with its script and style served by the app from the fastapi-offline package,
    as FastAPI's docs describe for self-hosting: FastAPI's own page loads them from a CDN and is blank
    offline. Swagger UI's online validator is turned off for the same reason. No /redoc: ReDoc's page
    fetches its logo from a CDN whatever it is given."""
    app.mount(DOCS_ASSETS_URL, StaticFiles(directory=DOCS_ASSETS), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def swagger_ui():
        return get_swagger_ui_html(openapi_url=app.openapi_url, title=f"{app.title}: API",
                                   swagger_js_url=f"{DOCS_ASSETS_URL}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{DOCS_ASSETS_URL}/swagger-ui.css",
                                   swagger_favicon_url=f"{DOCS_ASSETS_URL}/favicon.png",
                                   swagger_ui_parameters={"validatorUrl": None})


class DirectRoute(NamedTuple):
    method: str
    path: str
    handler: Callable  # async (Request) -> Response


class DrawApp(FastAPI):
    """The FastAPI app, with one route answered directly: ``direct``, a DirectRoute, sends that
    route's requests straight to its endpoint ``handler(request)``, before FastAPI's own call (its telemetry
    check, its middleware stack, the router's matching and its dependency machinery). The route stays
    declared, for the schema and /docs; the handler's HTTPException becomes the same {"detail": ...} answer
    FastAPI's handler gives, and any other error reaches the server, which answers 500 as FastAPI's error
    middleware would. For ``POST /api/predict``, the drawing page's one busy route: with the model stubbed
    out, a request's time in the app fell from 302 to 235 us when a middleware inside the stack first did
    this (one thread, medians of 7 alternating rounds of 400 requests, called in-process), and from 240 to
    162 us (the same, another day: ``benchmarks/bench_app.py OLD NEW``) when it moved here, with the
    answer's pixels written through an object-array table (``answer``)."""

    direct = None  # a DirectRoute

    async def __call__(self, scope, receive, send):
        route = self.direct
        if route is None or scope["type"] != "http" or scope["path"] != route.path or scope["method"] != route.method:
            return await super().__call__(scope, receive, send)
        scope["app"] = self
        try:
            response = await route.handler(Request(scope, receive))
        except HTTPException as e:
            response = JSONResponse({"detail": e.detail}, status_code=e.status_code, headers=e.headers)
        await response(scope, receive, send)


def create_app(weights, runs_dir="runs", collect=None, pretrained=None):
    """The app serving ``weights`` (a model file; a list of several: their committee) by default, and on
    request the model shipped with mnistlab (its file ``pretrained``, by default ``pretrained.FILE``, if
    there) and the models under
    ``runs_dir``; with ``collect`` (a drawings.CollectSettings), the drawings API too."""
    catalogue = Catalogue(runs_dir, weights, pretrained)
    batcher = Batcher()
    app = DrawApp(title="mnistlab draw", version="1", docs_url=None, redoc_url=None,
                  description="Draw a digit; a from-scratch network trained on MNIST reads it. "
                              "The drawing is cropped, scaled and centred as MNIST's digits were.")
    app.state.batcher = batcher  # its counts: how many passes read how many images
    add_offline_docs(app)

    def pick(name):
        try:
            return catalogue.get(name)
        except UnknownModel as e:
            fail(404, str(e))
        except InputError as e:
            fail(422, f"model {name or catalogue.default_name!r}: {catalogue.without_paths(str(e), name)}")

    @app.get("/", include_in_schema=False)
    def index():
        return FileResponse(STATIC / "index.html")

    @app.get("/api/model", response_model=ModelInfo, summary="The served model, or the one named by ?model=")
    def model_info(model: str | None = Query(None, description=MODEL_HELP)):
        found = pick(model)
        return found.info(default=found.name == catalogue.default_name)

    @app.get("/api/models", response_model=list[ModelInfo],
             summary="The served model, the one shipped with mnistlab and every model under the runs folder")
    def models():
        return catalogue.listing()

    @app.post("/api/predict", response_model=Prediction, openapi_extra=PREDICT_BODY,
              summary="Read a drawn canvas (JSON) or a photo (multipart field 'image')",
              responses={404: {"description": "unknown model"}, 413: {"description": "body too large"},
                         415: {"description": "neither JSON nor multipart"},
                         422: {"description": "bad pixels or not an image"}})
    async def predict(request: Request):
        # ?model= is read here rather than declared as a Query parameter: FastAPI's parameter
        # machinery cost about 60 us a request. PREDICT_BODY documents it in the schema.
        found = pick(request.query_params.get("model"))
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind not in ("application/json", "multipart/form-data"):
            fail(415, "body: send JSON {\"width\": W, \"height\": H, \"data\": \"<base64>\"} or {\"pixels\": [[...]]}, "
                      "or a multipart form with the file field 'image'")
        body = await read_body(request)
        try:
            if kind == "application/json":
                return await answer(batcher, found, drawing.mnist_like(canvas_from_json(body)))
            data = await image_from_form(request, body)
            # Decoding a photo takes milliseconds: off the event loop, so drawings keep flowing.
            return await answer(batcher, found, await run_in_threadpool(lambda: drawing.from_photo(drawing.read_image(data))))
        except InputError as e:
            fail(422, str(e))

    app.direct = DirectRoute("POST", "/api/predict", predict)
    if collect is not None:
        from .drawings import drawings_router  # it imports this module's request parsers
        app.include_router(drawings_router(collect, pick))
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
