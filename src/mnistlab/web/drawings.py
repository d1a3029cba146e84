"""The drawings API: keep the user's labelled drawings as a data set (data/collection.py) and say how
the current model does on them.

``drawings_router(settings, pick)`` returns the routes ``create_app`` mounts:

- ``POST /api/drawings``: a drawing in any form ``/api/predict`` takes, plus ``"label"`` (0..9) and,
  optionally, ``"session"`` (the page's id for this visit); in a multipart form, the fields ``image``,
  ``label`` and ``session``. The served (or ``?model=``) model reads it; the image it saw, the canvas,
  its answer and probabilities are kept with the label.
- ``GET /api/drawings/summary``: counts per digit and the model's accuracy, for the session and the set.
- ``DELETE /api/drawings/{id}``, ``DELETE /api/drawings``: remove one, or all.
- ``GET /api/drawings/download``: the set as a zip.

With ``--collect DIR`` the page starts with collecting on; without it, on a loopback address, the
page offers a toggle (off until the user turns it on) that names the folder the drawings go to. On
any other address without ``--collect`` every write is refused with 403.
"""

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from ..data import drawing
from ..data.collection import Collection, CollectionFull, summary
from ..errors import InputError
from .app import MODEL_HELP, canvas_from_compact, canvas_from_pixels, fail, read_body

MAX_SESSION = 64  # characters of a session id


@dataclass
class CollectSettings:
    """Where drawings go and whether they may be written: ``enabled`` (``--collect`` given) starts the
    page with collecting on; ``allowed``: the server takes drawings at all (``--collect``, or a
    loopback address, where only the user's own page can reach it)."""

    folder: str  # as the user gave it: shown on the page
    enabled: bool = False
    allowed: bool = True
    max_bytes: int = 100 * 1024 * 1024
    _collection: Collection | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def collection(self):
        """The folder's Collection, opened (and created) on first use."""
        with self._lock:
            if self._collection is None:
                self._collection = Collection(self.folder, self.max_bytes)
            return self._collection

    def shown_folder(self):
        """The folder as the page names it, with no server path (as /api/models names models): relative
        to the server's working folder when inside it, else ``…/NAME``."""
        folder = Path(self.folder).resolve()
        if folder.is_relative_to(Path.cwd()):
            return folder.relative_to(Path.cwd()).as_posix() + "/"
        return f"…/{folder.name}/"

    def state(self):
        return {"folder": self.shown_folder(), "enabled": self.enabled, "allowed": self.allowed,
                "max_bytes": self.max_bytes}


def parse_label(value):
    """The label as an int 0..9 (a JSON number or a form field's text), or a 422."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if type(value) is not int or not 0 <= value <= 9:  # not bool, not 3.0, not "x"
        fail(422, f"label: {str(value)[:40]!r}; expected an integer digit 0 to 9")
    return value


def parse_session(value):
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > MAX_SESSION or not value.isprintable():
        fail(422, f"session: expected a short text (at most {MAX_SESSION} printable characters)")
    return value


def labelled_canvas_from_json(body):
    """(canvas (h, w), label, session) from a JSON body: /api/predict's forms plus label and session."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        fail(422, "body: not valid JSON")
    if not isinstance(data, dict):
        fail(422, 'body: expected a JSON object with "label" and the drawing as /api/predict takes it')
    if "label" not in data:
        fail(422, "label: missing; send the digit the drawing shows, 0 to 9")
    label, session = parse_label(data.pop("label")), parse_session(data.pop("session", None))
    if "pixels" in data:
        if len(data) > 1:
            fail(422, f"body: unexpected fields beside pixels: {', '.join(sorted(k for k in data if k != 'pixels'))}")
        return canvas_from_pixels(data["pixels"]), label, session
    return canvas_from_compact(data), label, session


async def labelled_photo_from_form(request, body):
    """(gray photo (h, w), label, session) from a multipart form with fields image, label, session."""
    async def replay():
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        form = await Request(request.scope, replay).form(max_files=1, max_fields=10)
    except Exception as e:  # python-multipart's and Starlette's parse errors have no common base  # noqa: BLE001
        fail(422, f"body: not a readable multipart form ({e.__class__.__name__})")
    upload = form.get("image")
    if upload is None or isinstance(upload, str):
        fail(422, "image: expected a file in the multipart field 'image'")
    label = form.get("label")
    if label is None:
        fail(422, "label: missing; send the digit the photo shows, 0 to 9")
    label, session = parse_label(label), parse_session(form.get("session"))
    data = await upload.read()
    gray = await run_in_threadpool(drawing.read_image, data)
    return np.clip(np.rint(gray), 0, 255).astype(np.uint8), label, session


def drawings_router(settings, pick):
    """The routes; ``pick(name)`` gives the loaded model of a ``?model=`` name (None: the served one)."""
    router = APIRouter()

    def collection():
        if not settings.allowed:
            fail(403, "collecting drawings is off: start the server with --collect DIR to keep them")
        try:
            return settings.collection()
        except InputError as e:
            fail(500, str(e))

    def report(model, session):
        found = collection()
        images, _, records = found.arrays()
        predictions = (model.network.predict(images.reshape(len(images), -1).astype(np.float32) / 255.0)
                       if len(images) else np.zeros(0, int))
        out = summary(records, predictions, session)
        recent = records[-12:]  # of the whole set, so older drawings can be deleted from a new visit
        out.update(settings.state(), model=model.name, bytes=found.size_bytes(),
                   recent=[{k: r[k] for k in ("id", "label", "answer", "time")} for r in reversed(recent)])
        return out

    @router.post("/api/drawings", summary="Keep a labelled drawing (as /api/predict's body, plus \"label\")",
                 responses={403: {"description": "collecting is off"}, 413: {"description": "folder full"},
                            415: {"description": "neither JSON nor multipart"},
                            422: {"description": "bad label, pixels or photo, or nothing drawn"}})
    async def add(request: Request, model: str | None = Query(None, description=MODEL_HELP)):
        found = pick(model)
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind not in ("application/json", "multipart/form-data"):
            fail(415, 'body: send JSON {"label": 0-9, "width": W, "height": H, "data": "<base64>"} or '
                      '{"label": 0-9, "pixels": [[...]]}, or a multipart form with fields image and label')
        body = await read_body(request)
        try:
            if kind == "application/json":
                canvas, label, session = labelled_canvas_from_json(body)
                image28 = drawing.mnist_like(canvas)
            else:
                canvas, label, session = await labelled_photo_from_form(request, body)
                image28 = drawing.from_photo(canvas)
        except InputError as e:
            fail(422, str(e))
        if image28 is None:
            fail(422, "nothing drawn: an empty canvas is not kept")
        store = collection()
        answer, probabilities = found.predict(image28)
        canvas = np.clip(np.rint(np.asarray(canvas, np.float64)), 0, 255).astype(np.uint8)
        try:
            record = await run_in_threadpool(store.add, image28, canvas, label, answer, probabilities,
                                             found.name, session)
        except CollectionFull as e:
            fail(413, str(e))
        return {"drawing": record, "summary": report(found, session)}

    @router.get("/api/drawings/summary", summary="Counts per digit and the model's accuracy on the drawings")
    def get_summary(model: str | None = Query(None, description=MODEL_HELP),
                    session: str | None = Query(None, description="the page's session id")):
        found = pick(model)
        if not settings.allowed or not (settings.enabled or Path(settings.folder).is_dir()):
            return {**settings.state(), "model": found.name}  # nothing is created before the first drawing
        return report(found, parse_session(session))

    @router.delete("/api/drawings/{drawing_id}", summary="Delete one drawing")
    def delete(drawing_id: int):
        if not collection().delete(drawing_id):
            fail(404, f"no drawing {drawing_id}")
        return {"deleted": 1}

    @router.delete("/api/drawings", summary="Delete every drawing")
    def delete_all():
        return {"deleted": collection().clear()}

    @router.get("/api/drawings/download", summary="The drawings as a zip (IDX images and labels, index.csv, items)")
    def download():
        return Response(collection().zip_bytes(), media_type="application/zip",
                        headers={"Content-Disposition": 'attachment; filename="drawings.zip"'})

    return router
