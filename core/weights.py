"""Where a model's weights come from: explicit file or folder > Hugging Face cache > download > none.

The download goes through ``huggingface_hub`` (its cache layout, its resume logic) with a progress
callback, cooperative cancel, and a quick reachability probe first, so an offline machine reaches
the "no weights" state in seconds instead of sitting through the hub client's retries.

A download never hangs and never poisons the cache (docs/RELIABILITY.md): it runs in a worker
thread watched for an overall deadline (:func:`download_deadline_s`) and for stalls
(:data:`STALL_TIMEOUT_S` without a byte), and the file is checked (:func:`weights_file_problem`:
a safetensors header that matches the file's size) before it is used; a bad file is removed from
the Hugging Face cache again. Every failure is the documented untrained fallback with its reason.
A bad file already in the cache is passed over and fetched again.
"""

from __future__ import annotations

import json
import os
import pickle
import socket
import struct
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import SplitResult, urlsplit

from tqdm import tqdm as _tqdm

from .errors import DownloadCancelled, WeightsError

#: Progress callback: (bytes done, total bytes or None).
ProgressFn = Callable[[int, "int | None"], None]

#: File names of a timm Hub repo, preferred first (safetensors never unpickles).
HUB_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
DEFAULT_ENDPOINT = "https://huggingface.co"
#: Seconds allowed to reach the hub before we decide we are offline.
CONNECT_TIMEOUT_S = 3.0
#: A download that receives no byte for this many seconds is given up.
STALL_TIMEOUT_S = 15.0
#: The slowest average rate (bytes/s) a download may keep, and the fixed allowance on top (seconds):
#: together the overall deadline of :func:`download_deadline_s` (a 100 MB file: 60 + 1000 s).
MIN_RATE_BYTES_S = 100_000
DEADLINE_BASE_S = 60.0


def download_deadline_s(size: int | None) -> float:
    """Seconds a download of ``size`` bytes may take in all (unknown size: as for 1 GB)."""
    return DEADLINE_BASE_S + (size if size is not None else 1 << 30) / MIN_RATE_BYTES_S


def weights_file_problem(path: str | os.PathLike) -> str | None:
    """Why ``path`` is not a plausible weights file (None when it is), read in a few bytes.

    safetensors (https://github.com/huggingface/safetensors, "Format"): an 8-byte little-endian
    header length N, N bytes of JSON mapping names to ``{"dtype", "shape", "data_offsets"}``, then
    the data; the largest end offset plus 8 + N must be the file's size. A ``.bin`` must start like
    a zip (torch.save's format) or a pickle.
    """
    p = Path(path)
    try:
        size = p.stat().st_size
        with open(p, "rb") as f:
            head = f.read(8)
            if p.suffix == ".bin":
                return None if head[:4] == b"PK\x03\x04" or head[:1] == b"\x80" else "not a PyTorch file"
            if len(head) < 8:
                return "too short to be a weights file"
            (n,) = struct.unpack("<Q", head)
            if n < 2 or n > min(size - 8, 100 << 20):
                return "not a safetensors file (an HTML page or another file?)"
            header = json.loads(f.read(n))
    except OSError as e:
        return f"cannot be read ({e.strerror or e})"
    except ValueError:
        return "not a safetensors file (its header is not JSON)"
    if not isinstance(header, dict):
        return "not a safetensors file (its header is not a JSON object)"
    end = 0
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(x, int) for x in offsets)):
            return "not a safetensors file (a tensor without data offsets)"
        end = max(end, offsets[1])
    if 8 + n + end != size:
        return f"cut short or padded: {size} bytes where the header says {8 + n + end}"
    return None


@dataclass(frozen=True)
class WeightsSource:
    """Where weights were found; ``path`` is None when there are none."""

    kind: Literal["file", "dir", "cache", "download", "none"]
    path: Path | None
    detail: str

    @property
    def untrained(self) -> bool:
        return self.kind == "none"


def hub_endpoint() -> str:
    """The hub to download from, read at call time so ``HF_ENDPOINT`` can change under tests."""
    return os.environ.get("HF_ENDPOINT", DEFAULT_ENDPOINT).rstrip("/")


def hub_offline() -> bool:
    """True when the user asked the Hugging Face libraries to stay offline."""
    return any(
        os.environ.get(v, "").strip().upper() in {"1", "ON", "YES", "TRUE"}
        for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def cached_weights(hf_hub_id: str | None) -> Path | None:
    """The weights file of ``hf_hub_id`` in the bundled weights folder or the local Hugging Face cache.

    No network. The bundled folder (an installer's, see ``paths.bundled_hub_cache``) comes first.
    """
    if not hf_hub_id:
        return None
    from huggingface_hub import try_to_load_from_cache

    from .paths import bundled_hub_cache

    bundled = bundled_hub_cache()
    for cache_dir in ([str(bundled)] if bundled else []) + [None]:
        for filename in HUB_WEIGHT_FILES:
            found = try_to_load_from_cache(hf_hub_id, filename, cache_dir=cache_dir)
            if isinstance(found, str) and os.path.isfile(found) and weights_file_problem(found) is None:
                return Path(found)
    return None


def _remove_bad_cached_files(hf_hub_id: str) -> None:
    """Remove weights files of ``hf_hub_id`` from the user's cache that fail :func:`weights_file_problem`
    (an HTML page an earlier download let in): nothing can use them, and the hub client would return
    them instead of downloading again."""
    from huggingface_hub import try_to_load_from_cache

    for filename in HUB_WEIGHT_FILES:
        found = try_to_load_from_cache(hf_hub_id, filename)
        if isinstance(found, str) and os.path.isfile(found) and weights_file_problem(found) is not None:
            _remove_from_cache(Path(found))


def _remove_from_cache(path: Path) -> None:
    """Remove a downloaded file (the snapshot link and the blob it points to) from the Hugging Face cache."""
    blob = Path(os.path.realpath(path))
    for p in (path, blob):
        try:
            p.unlink()
        except OSError:
            pass


def _host_port(parts: SplitResult) -> tuple[str, int]:
    return str(parts.hostname), parts.port or (443 if parts.scheme == "https" else 80)


def hub_reachable(endpoint: str, timeout: float = CONNECT_TIMEOUT_S) -> bool:
    """Can a TCP connection to the endpoint (or the proxy that serves it) open within ``timeout`` s?"""
    parts = urlsplit(endpoint)
    if not parts.hostname:
        return False
    host, port = _host_port(parts)
    proxy = urllib.request.getproxies().get(parts.scheme)
    if proxy and not urllib.request.proxy_bypass(host):
        # behind a proxy only the proxy need answer; huggingface_hub's client goes through it too
        p = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        if p.hostname:
            host, port = _host_port(p)
    result: list[bool] = []

    def probe() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                result.append(True)
        except OSError:
            result.append(False)

    # getaddrinfo has no timeout of its own; a daemon thread bounds the whole probe.
    t = threading.Thread(target=probe, daemon=True, name="squeezelens-hub-probe")
    t.start()
    t.join(timeout + 0.5)
    return bool(result and result[0])


def _progress_class(progress: ProgressFn | None, cancel: threading.Event | None) -> type:
    """A tqdm class for ``hf_hub_download`` that reports to ``progress`` and honours ``cancel``."""

    class _Progress(_tqdm):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.pop("name", None)
            kwargs["disable"] = True
            self._done = int(kwargs.get("initial") or 0)
            self._total = kwargs.get("total")
            super().__init__(*args, **kwargs)
            self._report()

        def _report(self) -> None:
            if cancel is not None and cancel.is_set():
                raise DownloadCancelled("download cancelled")
            if progress is not None:
                progress(self._done, None if self._total is None else int(self._total))

        def update(self, n: float | None = 1) -> bool | None:
            self._done += int(n or 0)
            self._report()
            return super().update(n)

    return _Progress


def download_weights(
    hf_hub_id: str,
    *,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
    endpoint: str | None = None,
) -> Path:
    """Fetch the weights of ``hf_hub_id`` into the Hugging Face cache and return the file.

    Raises:
        DownloadCancelled: ``cancel`` was set.
        WeightsError: the hub is unreachable or has no weights file for this model.
    """
    from huggingface_hub import hf_hub_download

    endpoint = endpoint or hub_endpoint()
    if not hub_reachable(endpoint):
        raise WeightsError(f"cannot reach {endpoint} to download weights (offline?)")
    filename, size = _hub_weights_file(hf_hub_id, endpoint)
    _remove_bad_cached_files(hf_hub_id)  # the hub client would return it as it is
    # the worker reports here; progress and cancel are handled in the caller's thread
    state: dict[str, Any] = {"done": 0, "total": size, "at": time.monotonic()}
    stop = threading.Event()
    result: list[Any] = []

    def relay(done: int, total: int | None) -> None:
        state.update(done=done, total=total if total is not None else state["total"], at=time.monotonic())

    def work() -> None:
        try:
            result.append(Path(hf_hub_download(
                hf_hub_id, filename, endpoint=endpoint, etag_timeout=CONNECT_TIMEOUT_S,
                tqdm_class=_progress_class(relay, stop),
            )))
        except BaseException as e:  # handed to the caller's thread
            result.append(e)

    worker = threading.Thread(target=work, name="squeezelens-download", daemon=True)
    t0 = time.monotonic()
    deadline = download_deadline_s(size)
    worker.start()
    reported = (-1, None)
    while worker.is_alive():
        worker.join(0.1)
        now = (state["done"], state["total"])
        if progress is not None and now != reported:
            reported = now
            progress(*now)
        if cancel is not None and cancel.is_set():
            stop.set()  # the worker stops at its next chunk
            raise DownloadCancelled("download cancelled")
        waited = time.monotonic()
        if waited - t0 > deadline or waited - state["at"] > STALL_TIMEOUT_S:
            stop.set()
            why = "stalled" if waited - state["at"] > STALL_TIMEOUT_S else "too slow"
            raise WeightsError(f"download of {hf_hub_id} from {endpoint} {why}: {format_mb(state['done'])} of "
                               f"{format_mb(state['total'])} after {waited - t0:.0f} s; try again later")
    outcome = result[0] if result else WeightsError(f"download of {hf_hub_id} failed")
    if isinstance(outcome, BaseException):
        e = outcome
        if isinstance(e, DownloadCancelled) or any(isinstance(x, DownloadCancelled) for x in _chain(e)) \
                or (cancel is not None and cancel.is_set()):
            raise DownloadCancelled("download cancelled") from e
        if isinstance(e, WeightsError):
            raise e
        if not isinstance(e, Exception):
            raise e  # KeyboardInterrupt and the like
        raise WeightsError(f"download of {hf_hub_id} failed: {type(e).__name__}: {str(e)[:300]}") from e
    path: Path = outcome
    if progress is not None and (state["done"], state["total"]) != reported:
        progress(state["done"], state["total"])
    problem = weights_file_problem(path)
    if problem is not None:
        _remove_from_cache(path)
        raise WeightsError(f"{endpoint} sent a bad weights file for {hf_hub_id} ({problem}); it was not kept")
    return path


def format_mb(n: int | None) -> str:
    return "?" if n is None else f"{n / 1e6:.1f} MB"


def _hub_weights_file(hf_hub_id: str, endpoint: str) -> tuple[str, int | None]:
    """The first of :data:`HUB_WEIGHT_FILES` the hub has (and its size in bytes, if it says), asked with
    one HEAD each and no retries.

    ``hf_hub_download`` treats a HEAD that times out as "maybe transient" and retries it for up to
    a minute with back-off, and reports it as a missing entry; a server that accepts connections but
    never answers would hang the app. So the files are looked up here first, bounded by
    :data:`CONNECT_TIMEOUT_S`, and the download only starts once the hub has answered.
    """
    from huggingface_hub import get_hf_file_metadata, hf_hub_url
    from huggingface_hub.errors import EntryNotFoundError

    missing: list[str] = []
    for filename in HUB_WEIGHT_FILES:
        url = hf_hub_url(hf_hub_id, filename, endpoint=endpoint)
        try:
            meta = get_hf_file_metadata(url, timeout=CONNECT_TIMEOUT_S)
            return filename, meta.size
        except EntryNotFoundError:
            missing.append(filename)
        except Exception as e:  # timeouts, refused, HTTP errors: whatever the client raises
            raise WeightsError(f"{endpoint} failed to answer for {hf_hub_id} ({type(e).__name__}: {e})") from e
    raise WeightsError(f"{hf_hub_id} has no weights file on {endpoint} (looked for {', '.join(missing)})")


def resolve_weights(
    hf_hub_id: str | None,
    *,
    allow_download: bool = True,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> tuple[WeightsSource, str | None]:
    """Find weights for a catalogue model: the cache, then a download, then none.

    Returns:
        The source, and when there are no weights a one-line reason fit for a user.

    Raises:
        DownloadCancelled: the user cancelled the download; the caller decides what that means.
    """
    cached = cached_weights(hf_hub_id)
    if cached is not None:
        from .paths import bundled_hub_cache

        bundled = bundled_hub_cache()
        where = "weights bundled with the app" if bundled and cached.is_relative_to(bundled) else "Hugging Face cache"
        return WeightsSource("cache", cached, f"{where} ({hf_hub_id})"), None
    if not hf_hub_id:
        return WeightsSource("none", None, "no published weights"), "this model has no published weights"
    if not allow_download:
        return WeightsSource("none", None, "not cached"), "weights are not cached and downloads are off"
    if hub_offline():
        return WeightsSource("none", None, "offline"), "weights are not cached and HF_HUB_OFFLINE is set"
    try:
        path = download_weights(hf_hub_id, progress=progress, cancel=cancel)
    except WeightsError as e:
        return WeightsSource("none", None, "download failed"), str(e)
    return WeightsSource("download", path, f"downloaded from {hub_endpoint()} ({hf_hub_id})"), None


def load_state_dict_file(path: str | os.PathLike) -> dict[str, Any]:
    """Read a weights file without ever running pickled code.

    safetensors is read as it is; anything else goes through timm's loader with
    ``torch.load(weights_only=True)``, which accepts plain tensors and refuses arbitrary objects.

    Raises:
        WeightsError: missing, unreadable, not a weights file, or a pickle that needs more than tensors.
    """
    from timm.models import load_state_dict

    p = Path(path)
    if not p.exists():
        raise WeightsError("weights file not found", str(p))
    if not p.is_file():
        raise WeightsError("not a regular file", str(p))
    if p.suffix == ".safetensors" or _looks_like_safetensors(p):
        return _load_safetensors(p)
    try:
        sd = load_state_dict(str(p), weights_only=True)
    except Exception as e:  # UnpicklingError, RuntimeError (timm wraps the former in it), zip errors...
        if _needs_unsafe_globals(e):
            raise WeightsError(
                "refused: this checkpoint holds Python objects beyond plain tensors, and loading it "
                "would run code from the file. Convert it to .safetensors, or save only the state_dict.", str(p),
            ) from e
        if any(isinstance(x, pickle.UnpicklingError) for x in _chain(e)):
            raise WeightsError("not a readable weights file (neither PyTorch nor safetensors)", str(p)) from e
        raise WeightsError(f"not a readable weights file ({type(e).__name__}: {e})", str(p)) from e
    if not isinstance(sd, dict) or not all(hasattr(v, "shape") for v in sd.values()):
        raise WeightsError("not a state_dict of tensors", str(p))
    return sd


def _chain(e: BaseException) -> list[BaseException]:
    """``e`` and the exceptions it was raised from."""
    seen: list[BaseException] = []
    cur: BaseException | None = e
    while cur is not None and cur not in seen and len(seen) < 10:
        seen.append(cur)
        cur = cur.__cause__ or cur.__context__
    return seen


def _needs_unsafe_globals(e: BaseException) -> bool:
    """Did ``torch.load(weights_only=True)`` stop at a pickled object it does not allow?

    torch raises ``UnpicklingError`` for that and for plain garbage alike, and timm re-raises it as
    ``RuntimeError``; only the message ("Unsupported global: GLOBAL os.system ...") tells them apart.
    """
    return any("Unsupported global" in str(x) for x in _chain(e))


def _looks_like_safetensors(p: Path) -> bool:
    """safetensors starts with an 8-byte little-endian header length and then '{'."""
    with open(p, "rb") as f:
        head = f.read(9)
    return len(head) == 9 and head[8:9] == b"{"


def _load_safetensors(p: Path) -> dict[str, Any]:
    from safetensors.torch import load_file

    try:
        return load_file(str(p), device="cpu")
    except Exception as e:
        raise WeightsError(f"not a valid safetensors file ({e})", str(p)) from e
