"""Saves into a model folder under faults: kills at every step, user files, symlinks, modes, races.

Each test checks that nothing the user had is lost and that the folder holds one whole model
(byte for byte the previous one or the new one), never a mix and never nothing.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch

from squeezelens.core import saved_model
from squeezelens.core.errors import OutputError, WeightsError
from squeezelens.core.finetune import check_output_dir
from squeezelens.core.model_loader import load_model
from squeezelens.core.saved_model import SAVE_STEPS, save_model

HERE = Path(__file__).parent


def _model_files(folder: Path, snapshot) -> dict[str, str]:
    snap = snapshot(folder)
    return {k: v for k, v in snap.items() if k in ("config.json", "model.safetensors")}


@pytest.fixture(scope="module")
def references(tmp_path_factory, tiny_net, labels, snapshot):
    """The file hashes of model A (seed 1) and model B (seed 2) as a plain save writes them."""
    root = tmp_path_factory.mktemp("refs")
    return {seed: _model_files(save_model(tiny_net(seed), root / f"s{seed}", labels), snapshot) for seed in (1, 2, 3)}


def _prepare(folder: Path, tiny_net, labels) -> None:
    save_model(tiny_net(1), folder, labels)
    (folder / "versions" / "1").mkdir(parents=True)
    (folder / "versions" / "1" / "model.safetensors").write_bytes(b"version one")
    (folder / "versions" / "index.json").write_text('{"versions": [1]}')


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "fork"), reason="the kill grid forks its savers (POSIX)")
def test_a_save_killed_at_every_step_loses_nothing(tmp_path: Path, tiny_net, labels, snapshot, references) -> None:
    """SIGKILL at each fault point, with the atomic exchange and with the two-rename fallback."""
    jobs = []
    for exchange in (True, False):
        for step in SAVE_STEPS:
            out = tmp_path / f"{'x' if exchange else 'r'}-{step}" / "m"
            _prepare(out, tiny_net, labels)
            jobs.append({"out": str(out), "step": step, "exchange": exchange, "seed": 2})
    (tmp_path / "jobs.json").write_text(json.dumps(jobs))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, str(HERE / "save_killer.py"), str(tmp_path / "jobs.json")],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    statuses = json.loads(proc.stdout)
    for job, status in zip(jobs, statuses):
        out = Path(job["out"])
        reached = job["exchange"] is False or job["step"] != "old-aside"
        if reached:
            assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, job
        else:  # the exchange never puts the old model aside: that save finished
            assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, job
        # the next save repairs whatever the kill left: first a plain look, then the repair
        leftovers = [p.name for p in out.parent.iterdir() if p.name != "m"]
        if out.exists():
            assert _model_files(out, snapshot) in (references[1], references[2]), (job, leftovers)
        else:  # only between the two renames of the fallback: the old model waits beside it
            assert job == {**job, "exchange": False, "step": "old-aside"}, (job, leftovers)
            assert load_model(str(out)).labels == labels  # loading repairs it (the next start)
            assert _model_files(out, snapshot) == references[1]
        save_model(tiny_net(3), out, labels)
        assert sorted(p.name for p in out.parent.iterdir()) == ["m"], job  # no temporary folder left
        snap = snapshot(out)
        assert snap["versions/1/model.safetensors"] and (out / "versions" / "1" / "model.safetensors").read_bytes() \
            == b"version one", job
        assert (out / "versions" / "index.json").read_text() == '{"versions": [1]}', job
        assert _model_files(out, snapshot) == references[3], job


@pytest.mark.parametrize("extra", ["NOTES.txt", "README.md", "eval-results/run1.csv"])
def test_files_the_user_put_in_the_folder_are_never_deleted(tmp_path: Path, tiny_net, labels, snapshot,
                                                            extra: str) -> None:
    out = save_model(tiny_net(1), tmp_path / "m", labels)
    (out / extra).parent.mkdir(parents=True, exist_ok=True)
    (out / extra).write_text("mine")
    before = snapshot(out)
    with pytest.raises(OutputError, match="did not write") as info:
        save_model(tiny_net(2), out, labels)
    assert extra.split("/")[0] in info.value.reason
    with pytest.raises(OutputError, match="did not write"):  # finetune refuses before training, too
        check_output_dir(out)
    assert snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_a_dataset_inside_the_output_folder_is_refused(tmp_path: Path, tiny_net, labels, snapshot) -> None:
    out = tmp_path / "m"
    (out / "photos" / "cats").mkdir(parents=True)
    (out / "photos" / "cats" / "1.jpg").write_bytes(b"a photo")
    before = snapshot(out)
    with pytest.raises(OutputError, match="holds the dataset"):
        check_output_dir(out, out / "photos")
    with pytest.raises(OutputError, match="holds the dataset"):
        save_model(tiny_net(1), out, labels, data_dir=out / "photos")
    assert snapshot(out) == before


def test_versions_survive_a_save(tmp_path: Path, tiny_net, labels, snapshot, references) -> None:
    out = tmp_path / "m"
    _prepare(out, tiny_net, labels)
    save_model(tiny_net(2), out, labels)
    assert (out / "versions" / "1" / "model.safetensors").read_bytes() == b"version one"
    assert _model_files(out, snapshot) == references[2]


def test_a_symlinked_output_folder_stays_a_link_and_its_target_is_updated(tmp_path: Path, tiny_net, labels,
                                                                          snapshot, references) -> None:
    target = save_model(tiny_net(1), tmp_path / "real" / "m", labels)
    link = tmp_path / "link"
    link.symlink_to(target, target_is_directory=True)
    save_model(tiny_net(2), link, labels)
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert _model_files(target, snapshot) == references[2]
    assert sorted(p.name for p in (tmp_path / "real").iterdir()) == ["m"]


def test_modes_are_kept_and_never_private_by_accident(tmp_path: Path, tiny_net, labels) -> None:
    out = save_model(tiny_net(1), tmp_path / "m", labels)
    umask = saved_model._umask()
    assert stat.S_IMODE(out.stat().st_mode) == 0o777 & ~umask  # not mkdtemp's 0700
    assert stat.S_IMODE((out / "config.json").stat().st_mode) == 0o666 & ~umask
    os.chmod(out, 0o750)
    os.chmod(out / "model.safetensors", 0o640)
    save_model(tiny_net(2), out, labels)
    assert stat.S_IMODE(out.stat().st_mode) == 0o750
    assert stat.S_IMODE((out / "model.safetensors").stat().st_mode) == 0o640


def test_two_saves_at_once_both_finish_and_leave_one_whole_model(tmp_path: Path, tiny_net, labels, snapshot,
                                                                 references, monkeypatch) -> None:
    out = tmp_path / "m"
    save_model(tiny_net(1), out, labels)
    first_in = threading.Event()
    release = threading.Event()

    def hook(step: str) -> None:
        if step == "written" and threading.current_thread().name == "first":
            first_in.set()
            release.wait(10)

    monkeypatch.setattr(saved_model, "fault_hook", hook)
    errors: list[BaseException] = []

    def save(seed: int) -> None:
        try:
            save_model(tiny_net(seed), out, labels)
        except BaseException as e:
            errors.append(e)

    with torch.random.fork_rng():
        a = threading.Thread(target=save, args=(2,), name="first")
        a.start()
        assert first_in.wait(10)
        b = threading.Thread(target=save, args=(3,), name="second")
        b.start()
        b.join(0.5)
        assert b.is_alive()  # waits for the first save's lock
        release.set()
        a.join(20)
        b.join(20)
    assert not errors
    assert _model_files(out, snapshot) == references[3]  # the later save, whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_stale_temporary_folders_of_dead_processes_are_removed(tmp_path: Path, tiny_net, labels) -> None:
    out = save_model(tiny_net(1), tmp_path / "m", labels)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    for name in (f".m.new-{dead}", ".m.saving-k2j4x9", f".m.old-{dead}"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "model.safetensors").write_bytes(b"x" * 1000)
    (tmp_path / ".other.new-1").mkdir()  # another folder's: not ours to judge here
    save_model(tiny_net(2), out, labels)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.new-1", "m"]


def test_a_model_with_nan_weights_is_never_saved(tmp_path: Path, tiny_net, labels) -> None:
    net = tiny_net(1)
    with torch.no_grad():
        net.get_classifier().bias[0] = float("nan")
    with pytest.raises(WeightsError, match="NaN or infinite"):
        save_model(net, tmp_path / "m", labels)
    assert not (tmp_path / "m").exists()


def test_a_model_with_inf_weights_is_never_used(tmp_path: Path, tiny_net, labels) -> None:
    from safetensors.torch import load_file, save_file

    out = save_model(tiny_net(1), tmp_path / "m", labels)
    sd = load_file(out / "model.safetensors")
    sd["fc.weight"][0, 0] = float("inf")
    save_file(sd, out / "model.safetensors")
    with pytest.raises(WeightsError, match="NaN or infinite"):
        load_model(str(out))
