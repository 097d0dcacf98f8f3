"""One torchrun process of tests/core/test_finetune_ddp.py: a deep finetune that also records, for the
test, a digest of the trainable parameters after every update and every write this process made under
the output folder or the checkpoint folder (Python's audit hooks see each open-for-write, mkdir,
rename and delete). Writes only ``REPORT_DIR/rank<RANK>.json``, outside both watched folders.

Usage: ``python -m torch.distributed.run ... ddp_worker.py DATA OUT BASE_MODEL REPORT_DIR BATCH EPOCHS [resume]``
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
WRITE_EVENTS = {"os.mkdir", "os.rename", "os.remove", "os.rmdir", "shutil.rmtree", "os.chmod", "os.truncate"}


def main() -> None:
    data, out, base, report_dir, batch, epochs = sys.argv[1:7]
    resume = sys.argv[7:] == ["resume"]
    rank = int(os.environ["RANK"])
    watched = (str(Path(out).resolve().parent / Path(out).name),
               str(Path(os.environ["SQUEEZELENS_CACHE_DIR"]).resolve() / "finetune-checkpoints"))
    writes: list[str] = []

    def audit(event: str, args: tuple[Any, ...]) -> None:
        if event == "open":
            path, mode, flags = args
            if not ((mode and any(c in str(mode) for c in "wax+")) or (isinstance(flags, int) and flags & WRITE_FLAGS)):
                return
        elif event not in WRITE_EVENTS:
            return
        for a in args[:2]:
            if isinstance(a, (str, bytes, os.PathLike)) and any(os.fsdecode(a).startswith(w) for w in watched):
                writes.append(f"{event} {os.fsdecode(a)}")

    sys.addaudithook(audit)

    import torch

    from squeezelens.core.finetune import FinetuneConfig, finetune, last_stage

    digests: list[str] = []
    real = last_stage.train_one_epoch

    def spying(*a: Any, **kw: Any) -> Any:
        trainable, after_batch = a[2], a[14]

        def after(b: int, loss: float) -> None:
            h = hashlib.sha256()
            for m in trainable.values():
                for t in m.state_dict().values():
                    h.update(t.detach().cpu().contiguous().numpy().tobytes())
            digests.append(h.hexdigest())
            after_batch(b, loss)

        return real(*a[:14], after, *a[15:], **kw)

    last_stage.train_one_epoch = spying
    torch.set_num_threads(1)
    cfg = FinetuneConfig(data, out, model=base, mode="deep", epochs=int(epochs), batch_size=int(batch),
                         input_size=32, device="cpu", allow_download=False, resume=resume)
    result = finetune(cfg)
    report = {"rank": rank, "digests": digests, "writes": writes, "history": [h.train_loss for h in result.history],
              "version": result.version}
    Path(report_dir, f"rank{rank}.json").write_text(json.dumps(report))


if __name__ == "__main__":
    main()
