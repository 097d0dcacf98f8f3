"""Review suspicious labels: training images whose folder label disagrees with what the rest of the data says.

Method (confident learning, Northcutt, Jiang & Chuang 2021, "Confident Learning: Estimating
Uncertainty in Dataset Labels", JAIR 70):

1. Pooled backbone features of every image (:mod:`.feature_cache`: the vectors quick-mode
   finetuning already cached are reused, so no extra backbone pass for a dataset trained on).
2. Out-of-fold predicted probabilities: the images are split into ``k`` stratified folds; for each
   fold a linear softmax head is trained on the other folds' features (standardised with their
   mean/std, as quick mode does) and predicts the held-out fold. Every image is thus judged by a
   head that never saw its label.
3. Per-class thresholds ``t_j`` = mean out-of-fold probability of class ``j`` over the images
   labelled ``j`` (the paper's per-class self-confidence). An image labelled ``i`` is *flagged*
   when some other class ``j`` has ``p_j >= t_j`` (it lands off the diagonal of the confident
   joint). Suspects are ranked by ``score = 1 - p_given`` (the paper's and cleanlab's default
   "self-confidence" ranking): the lower the probability of its own label, the more suspicious.
   The suggested label is the most probable class other than the given one.

cleanlab implements this, but would bring pandas, scikit-learn, joblib and more into the desktop
installer (``pip install --dry-run cleanlab``: 10 packages) for about 30 lines of numpy; see
docs/TRUST.md. Moving files: :func:`move_to_class` never overwrites, :func:`move_to_trash` moves
into ``DATA_DIR/.squeezelens-trash/`` (hidden, so scans skip it) and :func:`restore_from_trash`
puts a file back; nothing is ever deleted.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import Cancelled, DatasetError, OutputError, UsageError

#: The trash folder inside a dataset (hidden: :func:`.dataset_scan.scan_dataset` skips it).
TRASH_DIR = ".squeezelens-trash"
#: Where each trashed file came from: ``{trash path relative to the trash folder: original relative path}``.
TRASH_INDEX = "index.json"
DEFAULT_FOLDS = 5
#: Progress callback: ``(stage, done, total)``; stage is ``features`` or ``folds``.
ProgressFn = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Suspect:
    """One training image as the review ranks it.

    Attributes:
        given / suggested: class indices (folder label; the most probable other class).
        p_given / p_suggested: out-of-fold probabilities (0..1) of those classes.
        score: ``1 - p_given``; higher = more suspicious.
        flagged: confident learning calls its label an issue (another class above its threshold).
    """

    path: Path
    given: int
    given_label: str
    suggested: int
    suggested_label: str
    p_given: float
    p_suggested: float
    score: float
    flagged: bool

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "given": self.given_label, "suggested": self.suggested_label,
                "score": round(self.score, 6), "p_given": round(self.p_given, 6),
                "p_suggested": round(self.p_suggested, 6), "flagged": self.flagged}


@dataclass
class ReviewResult:
    """Every readable image, most suspicious first, and how the ranking was made."""

    root: Path
    class_names: list[str]
    suspects: list[Suspect]
    folds: int
    base_model: str
    skipped: list[str] = field(default_factory=list)
    cache_hits: int = 0
    cache_misses: int = 0

    @property
    def flagged(self) -> list[Suspect]:
        return [s for s in self.suspects if s.flagged]

    def to_dict(self) -> dict[str, Any]:
        return {"data_dir": str(self.root), "classes": self.class_names, "base_model": self.base_model,
                "folds": self.folds, "images": len(self.suspects), "flagged": len(self.flagged),
                "suspects": [s.to_dict() for s in self.suspects], "skipped": self.skipped,
                "cache_hits": self.cache_hits, "cache_misses": self.cache_misses}


def stratified_folds(labels: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """Fold number (0..k-1) of each of ``labels`` ``(n,)``: each class dealt round-robin after a seeded shuffle."""
    rng = np.random.default_rng(seed)
    folds = np.zeros(len(labels), dtype=np.int64)
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        rng.shuffle(idx)
        folds[idx] = np.arange(len(idx)) % k
    return folds


def fit_predict_head(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, num_classes: int,
                     steps: int = 200, lr: float = 0.01, weight_decay: float = 1e-3, seed: int = 0) -> np.ndarray:
    """Train a linear softmax head (full batch, Adam, cross-entropy) and return ``x_test``'s probabilities.

    Args:
        x_train: ``(n, D)`` float32 features; ``y_train``: ``(n,)`` class indices.
        x_test: ``(m, D)`` features. Both are standardised with ``x_train``'s per-dimension mean/std.

    Returns:
        ``(m, num_classes)`` float64 probabilities.
    """
    import torch

    gen = torch.Generator().manual_seed(seed)
    mean = x_train.mean(0)
    std = x_train.std(0)
    std = np.maximum(std, std.mean() * 1e-2 + 1e-8)
    xt = torch.from_numpy(((x_train - mean) / std).astype(np.float32))
    xs = torch.from_numpy(((x_test - mean) / std).astype(np.float32))
    yt = torch.from_numpy(y_train.astype(np.int64))
    head = torch.nn.Linear(xt.shape[1], num_classes)
    with torch.no_grad():
        head.weight.normal_(0, 0.01, generator=gen)
        head.bias.zero_()
    opt = torch.optim.Adam(head.parameters(), lr=lr, weight_decay=weight_decay)
    loss_fn = torch.nn.CrossEntropyLoss()
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        loss_fn(head(xt), yt).backward()
        opt.step()
    with torch.no_grad():
        return head(xs).softmax(1).double().numpy()


def out_of_fold_probs(x: np.ndarray, y: np.ndarray, num_classes: int, k: int = DEFAULT_FOLDS, seed: int = 0,
                      on_fold: Callable[[int, int], None] | None = None,
                      cancel: threading.Event | None = None) -> np.ndarray:
    """``(n, num_classes)`` probabilities, each row from a head trained without that row's fold.

    Raises:
        UsageError: ``k`` below 2.
        Cancelled: ``cancel`` was set (checked before each fold).
    """
    if k < 2:
        raise UsageError("the review needs at least 2 folds")
    folds = stratified_folds(y, k, seed)
    probs = np.zeros((len(y), num_classes))
    for f in range(k):
        if cancel is not None and cancel.is_set():
            raise Cancelled("review cancelled")
        test = folds == f
        if test.any():
            probs[test] = fit_predict_head(x[~test], y[~test], x[test], num_classes, seed=seed + f)
        if on_fold is not None:
            on_fold(f + 1, k)
    return probs


def confident_learning(probs: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Confident learning's label-issue test on out-of-fold ``probs`` ``(n, C)`` and given ``labels`` ``(n,)``.

    Returns:
        ``(flagged, thresholds)``: ``(n,)`` bool, an image whose label is an issue (some other class
        ``j`` reaches ``p_j >= t_j``); ``(C,)`` the per-class thresholds ``t_j`` (mean ``p_j`` over
        images labelled ``j``; 1.0 for a class with no images, so it never claims one).
    """
    n, c = probs.shape
    thresholds = np.ones(c)
    for j in range(c):
        rows = labels == j
        if rows.any():
            thresholds[j] = probs[rows, j].mean()
    above = probs >= thresholds[None, :]
    above[np.arange(n), labels] = False
    return np.asarray(above.any(axis=1)), thresholds


def rank_suspects(paths: list[Path], labels: np.ndarray, probs: np.ndarray, class_names: list[str]) -> list[Suspect]:
    """Every image as a :class:`Suspect`, most suspicious first (score descending, then path)."""
    flagged, _ = confident_learning(probs, labels)
    out = []
    for i, p in enumerate(paths):
        given = int(labels[i])
        others = probs[i].copy()
        others[given] = -1.0
        sug = int(others.argmax())
        out.append(Suspect(p, given, class_names[given], sug, class_names[sug], float(probs[i, given]),
                           float(probs[i, sug]), float(1.0 - probs[i, given]), bool(flagged[i])))
    out.sort(key=lambda s: (-s.score, str(s.path)))
    return out


def review_dataset(
    data_dir: str | os.PathLike[str],
    model: str | None = None,
    weights: str | os.PathLike[str] | None = None,
    *,
    device: str = "auto",
    input_size: int | None = None,
    folds: int = DEFAULT_FOLDS,
    seed: int = 0,
    feature_cache_dir: str | os.PathLike[str] | None = None,
    use_cache: bool = True,
    allow_download: bool = True,
    batch_size: int = 32,
    on_progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> ReviewResult:
    """Rank the images of ``data_dir`` (class subfolders, or train/ and val/) by how suspicious their label is.

    ``model``/``weights``/``input_size`` choose the feature extractor as ``finetune`` does (a
    saved-model folder works too); with the same settings as a quick finetune the cached features
    are reused.

    Raises:
        DatasetError: no usable dataset, or a class with fewer than 2 readable images... (k-fold needs them).
        Cancelled: ``cancel`` was set.
        SqueezeLensError: the model or its weights cannot be loaded.
    """
    from .backend_choice import pick_device
    from .dataset_scan import scan_dataset
    from .feature_cache import FeatureCache, extract_features, model_key
    from .feature_graph import LazyFeatureRunner
    from .finetune.run import pretrained_cfg_at_size
    from .model_loader import load_model
    from .preprocess import data_config, eval_transform, fast_decode_min_side

    scan = scan_dataset(data_dir, cancel=cancel)
    samples = scan.train + scan.val
    dev = pick_device(device)
    loaded = load_model(model, None if weights is None else Path(weights), allow_download=allow_download,
                        cancel=cancel)
    net: Any = loaded.model
    net.pretrained_cfg = pretrained_cfg_at_size(net, input_size)
    dcfg = data_config(net)
    side = fast_decode_min_side(dcfg)
    net.eval().to(dev)
    runner = LazyFeatureRunner(net, dcfg, dev)  # ONNX Runtime's features graph on the CPU, as finetuning
    cache = (FeatureCache(model_key(net, dcfg, side, runner.identity),
                          None if feature_cache_dir is None else Path(feature_cache_dir))
             if use_cache else None)
    paths = [s.path for s in samples]

    def on_batch(done: int, todo: int, _elapsed: float) -> None:
        if on_progress is not None:
            on_progress("features", done, todo)

    try:
        feats = extract_features(net, paths, eval_transform(dcfg), cache, device=dev, batch_size=batch_size,
                                 decode_min_side=side, on_batch=on_batch, cancel=cancel, runner=runner)
    finally:
        if cache is not None:
            cache.close()
    ok_paths = [paths[i] for i in feats.ok]
    labels = np.array([samples[i].label for i in feats.ok], dtype=np.int64)
    counts = np.bincount(labels, minlength=scan.num_classes)
    k = int(min(folds, max(2, counts[counts > 0].min()))) if labels.size else 0
    if labels.size == 0 or (counts > 0).sum() < 2:
        raise DatasetError("fewer than 2 classes have readable images; nothing to review", str(data_dir))
    probs = out_of_fold_probs(feats.vectors.astype(np.float64), labels, scan.num_classes, k, seed,
                              on_fold=(lambda d, t: on_progress("folds", d, t)) if on_progress else None,
                              cancel=cancel)
    return ReviewResult(
        Path(data_dir), list(scan.class_names), rank_suspects(ok_paths, labels, probs, list(scan.class_names)), k,
        loaded.name, [f"{s.path}: {s.reason}" for s in scan.skipped] + [f"{paths[i]}: {why}" for i, why in
                                                                           sorted(feats.failed.items())],
        feats.hits, feats.misses,
    )


# -- acting on a suspect: move, trash, restore (never overwrite, never delete) -------------------------------
def _free_name(folder: Path, name: str) -> Path:
    """``folder/name``, or ``folder/stem (2).ext``, ``(3)``... : the first that does not exist."""
    target = folder / name
    stem, suffix = Path(name).stem, Path(name).suffix
    n = 2
    while target.exists():
        target = folder / f"{stem} ({n}){suffix}"
        n += 1
    return target


def _class_folder(path: Path) -> Path:
    return path.parent


def move_to_class(path: str | os.PathLike[str], class_name: str) -> Path:
    """Move an image into the sibling class folder ``class_name`` (same split: ``train/X`` -> ``train/Y``).

    Never overwrites: a name already taken there gets `` (2)``, `` (3)``... before its extension.

    Returns:
        The file's new path.

    Raises:
        UsageError: ``class_name`` is empty or a path, or the file is already in that class.
        OutputError: the file is missing or cannot be moved.
    """
    src = Path(path)
    if not class_name or os.sep in class_name or "/" in class_name or class_name.startswith("."):
        raise UsageError(f"not a class name: '{class_name}'")
    if _class_folder(src).name == class_name:
        raise UsageError(f"already in class {class_name}", str(src))
    if not src.is_file():
        raise OutputError("the file is not there any more", str(src))
    folder = _class_folder(src).parent / class_name
    try:
        folder.mkdir(exist_ok=True)
        dest = _free_name(folder, src.name)
        os.rename(src, dest)  # same filesystem (sibling folders): atomic, never replaces (name checked free)
    except OSError as e:
        raise OutputError(f"cannot move it ({e.strerror or e})", str(src)) from None
    return dest


def _dataset_root(path: Path, root: Path | None) -> Path:
    if root is not None:
        return root
    up = _class_folder(path).parent
    return up.parent if up.name in ("train", "val") else up


def move_to_trash(path: str | os.PathLike[str], root: str | os.PathLike[str] | None = None) -> Path:
    """Move an image into ``ROOT/.squeezelens-trash/`` (its relative path kept), recording where it came from.

    ``root`` is the dataset folder (default: the class folder's parent, or the parent of ``train``/``val``).

    Returns:
        The file's path in the trash.

    Raises:
        OutputError: the file is missing or cannot be moved.
    """
    src = Path(path)
    base = _dataset_root(src, None if root is None else Path(root))
    if not src.is_file():
        raise OutputError("the file is not there any more", str(src))
    try:
        rel = src.resolve().relative_to(base.resolve())
    except ValueError:
        rel = Path(src.parent.name) / src.name
    trash = base / TRASH_DIR
    try:
        (trash / rel.parent).mkdir(parents=True, exist_ok=True)
        dest = _free_name(trash / rel.parent, src.name)
        os.rename(src, dest)
        index = _read_trash_index(trash)
        index[str(dest.relative_to(trash))] = str(rel)
        from .atomic_files import write_text_atomic

        write_text_atomic(trash / TRASH_INDEX, json.dumps(index, indent=2) + "\n")
    except OSError as e:
        raise OutputError(f"cannot move it to the trash ({e.strerror or e})", str(src)) from None
    return dest


def _read_trash_index(trash: Path) -> dict[str, str]:
    try:
        data = json.loads((trash / TRASH_INDEX).read_text(encoding="utf-8"))
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def restore_from_trash(trashed: str | os.PathLike[str], root: str | os.PathLike[str]) -> Path:
    """Put a trashed file back where it was (a free name there if that one was taken meanwhile).

    Returns:
        The restored path.

    Raises:
        OutputError: the file is not in the trash or cannot be moved.
    """
    base = Path(root)
    trash = base / TRASH_DIR
    src = Path(trashed)
    if not src.is_file():
        raise OutputError("not in the trash", str(src))
    index = _read_trash_index(trash)
    key = str(src.resolve().relative_to(trash.resolve()))
    rel = Path(index.get(key, key))
    try:
        (base / rel.parent).mkdir(parents=True, exist_ok=True)
        dest = _free_name(base / rel.parent, rel.name)
        os.rename(src, dest)
        index.pop(key, None)
        from .atomic_files import write_text_atomic

        write_text_atomic(trash / TRASH_INDEX, json.dumps(index, indent=2) + "\n")
    except OSError as e:
        raise OutputError(f"cannot restore it ({e.strerror or e})", str(src)) from None
    return dest


def format_review(result: ReviewResult, limit: int | None = None) -> str:
    """The ``review`` command's table: rank, score, given -> suggested label, flagged mark, path."""
    rows = result.suspects if limit is None else result.suspects[:limit]
    out = [f"{len(result.flagged)} of {len(result.suspects)} images look mislabelled "
           f"(confident learning, {result.folds}-fold out-of-fold linear heads on {result.base_model} features)\n"]
    w = max([len("GIVEN"), *(len(s.given_label) for s in rows)])
    v = max([len("SUGGESTED"), *(len(s.suggested_label) for s in rows)])
    out.append(f"{'RANK':>4}  {'SCORE':>5}  {'GIVEN':<{w}}  {'SUGGESTED':<{v}}  !  PATH\n")
    for i, s in enumerate(rows, 1):
        out.append(f"{i:>4}  {s.score:5.2f}  {s.given_label:<{w}}  {s.suggested_label:<{v}}  "
                   f"{'!' if s.flagged else ' '}  {s.path}\n")
    out.append("\n! = flagged: another class is more likely than that class's own images usually are\n")
    return "".join(out)
