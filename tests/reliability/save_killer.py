"""Run saves that kill themselves at a chosen step (a helper process of test_save_faults.py, not a test).

Usage: ``python save_killer.py JOBS.json``; JOBS is a list of ``{"out", "step", "exchange", "seed"}``.
torch and timm are imported once; each job runs in a forked child that SIGKILLs itself when
``saved_model.fault_hook`` reaches ``step``. Prints one JSON list: each child's wait status.
torch runs single-threaded here, so forking after it is imported is safe.
"""

from __future__ import annotations

import json
import os
import signal
import sys

import timm
import torch

from squeezelens.core import saved_model

torch.set_num_threads(1)
LABELS = ["ant", "bee", "cow", "doe"]


def net(seed: int):
    torch.manual_seed(seed)
    m = timm.create_model("test_resnet", num_classes=len(LABELS))
    with torch.no_grad():
        m.get_classifier().weight.mul_(20.0)
    return m.eval()


def main() -> None:
    jobs = json.loads(open(sys.argv[1]).read())
    models = {s: net(s) for s in {j["seed"] for j in jobs}}
    statuses = []
    for job in jobs:
        pid = os.fork()
        if pid == 0:  # the child: one save, killed at job["step"]
            try:
                saved_model.use_rename_exchange = job["exchange"]

                def hook(step: str, want: str = job["step"]) -> None:
                    if step == want:
                        os.kill(os.getpid(), signal.SIGKILL)

                saved_model.fault_hook = hook
                saved_model.save_model(models[job["seed"]], job["out"], LABELS)
            except BaseException as e:  # noqa: BLE001 - report, never run the parent's code
                sys.stderr.write(f"{type(e).__name__}: {e}\n")
                os._exit(3)
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        statuses.append(status)
    print(json.dumps(statuses))


if __name__ == "__main__":
    main()
