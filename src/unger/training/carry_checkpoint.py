"""Move checkpoints between this machine and a lent GPU, whose calls carry at most 64 MiB each way.

    python -m unger.training.carry_checkpoint slim DEST CHECKPOINT [CHECKPOINT ...]
    python -m unger.training.carry_checkpoint back DEST FOLDER [--skip CARRIED] [--max-mib 16] [--max-files 6]

``slim``: copies of finished checkpoints without their optimizer state and last weights
(``checkpoint.without_optimizer``): a finished Stage I checkpoint of Beauty is 19 MB, its copy 4.9 MB. Every
loop loads such a copy like the original and refuses to train it further; ``scripts/gpu_batch.sh``
puts what it finds in ``data/carry/checkpoints`` into the checkpoint folder, so runs there resume the
carried stages instead of training them again.
``back``: what a GPU call returns, up to ``--max-files`` files of at most ``--max-mib`` MiB each. First whole
copies of the checkpoints in FOLDER whose run had not finished (a run stopped at a deadline), the
most-trained first, for resuming here under the same name; then slim copies of the finished Stage I
checkpoints that were not carried in (not in ``--skip``): a stopped Stage II resumes here only on the Stage
I it was trained on, and a CPU Stage I is not the GPU's. Those left behind are named on stderr.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import torch

from unger.training.checkpoint import save_atomic, stop_step, without_optimizer
from unger.training.fusion import keeps_training


def finished(ckpt: dict) -> bool:
    """Whether the run that wrote ``ckpt`` had stopped under its own settings: a Stage I checkpoint
    (settings in ``config``) or one of the Stage II / SASRec loop (``train_config``)."""
    if "train_config" in ckpt:
        tc = ckpt["train_config"]
        last = stop_step(ckpt["history"], tc["select_metric"], tc["patience"], tc["max_steps"])
        return ckpt["stopped_early"] or ckpt["step"] >= last
    config = ckpt["config"]
    return not keeps_training(ckpt["step"], ckpt["bad_evals"], config["max_steps"], config["patience"])


def _load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def slim_copy(source: Path, dest: Path, ckpt: dict | None = None) -> Path:
    """Write the optimizer-less copy of the finished checkpoint ``source`` into the folder ``dest``
    (``ckpt``: its contents, where the caller has loaded them already)."""
    ckpt = _load(source) if ckpt is None else ckpt
    if ckpt.get("optimizer") is None:
        raise ValueError(f"{source} has no optimizer state: it is already a slim copy")
    if not finished(ckpt):
        raise ValueError(f"{source} stopped at step {ckpt['step']} before its run finished; carry it whole")
    target = Path(dest) / Path(source).name
    save_atomic(without_optimizer(ckpt), target)
    return target


def carry_back(folder: Path, dest: Path, skip: Path | None, max_bytes: int, max_files: int) -> tuple[list[Path], list[Path]]:
    """What a GPU call returns from ``folder`` into ``dest``, in one pass over the checkpoints' contents.

    First whole copies of the unfinished checkpoints (optimizer state kept, run stopped before its own
    end), most-trained first, each at most ``max_bytes``; then slim copies of the finished Stage I
    checkpoints (those without a Stage II/SASRec ``train_config``) that ``skip`` does not hold, newest
    first. At most ``max_files`` in all. Returns the copies and the checkpoints left behind by a limit.
    """
    carried = {p.name for p in Path(skip).glob("*.pt")} if skip is not None else set()
    unfinished, stage_one = [], []
    for path in sorted(Path(folder).glob("*.pt")):
        ckpt = _load(path)
        if ckpt.get("optimizer") is None:
            continue  # a slim copy: finished, and carried in
        if not finished(ckpt):
            unfinished.append((-ckpt["step"], path))
        elif "train_config" not in ckpt and path.name not in carried:
            stage_one.append((-path.stat().st_mtime, path, ckpt))
    copies, left = [], []
    Path(dest).mkdir(parents=True, exist_ok=True)
    for _, path in sorted(unfinished):
        if len(copies) == max_files or path.stat().st_size > max_bytes:
            left.append(path)
        else:
            copies.append(Path(shutil.copy2(path, Path(dest) / path.name)))
    for _, path, ckpt in sorted(stage_one, key=lambda entry: entry[:2]):
        if len(copies) == max_files:
            left.append(path)
        else:
            copies.append(slim_copy(path, dest, ckpt))
    return copies, left


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    slim = sub.add_parser("slim", help="optimizer-less copies of finished checkpoints")
    slim.add_argument("dest", type=Path)
    slim.add_argument("checkpoints", type=Path, nargs="+")
    back = sub.add_parser("back", help="unfinished checkpoints whole, then new finished Stage I ones slim")
    back.add_argument("dest", type=Path)
    back.add_argument("folder", type=Path)
    back.add_argument("--skip", type=Path, help="folder of the checkpoints that were carried in")
    back.add_argument("--max-mib", type=float, default=16)
    back.add_argument("--max-files", type=int, default=6)
    args = parser.parse_args(argv)
    if args.command == "slim":
        copies = [slim_copy(source, args.dest) for source in args.checkpoints]
    else:
        copies, left = carry_back(args.folder, args.dest, args.skip, int(args.max_mib * 2**20), args.max_files)
        for path in left:
            print(f"left behind (size or file limit): {path} ({path.stat().st_size / 2**20:.1f} MiB)", file=sys.stderr)
    for path in copies:
        print(f"{path} ({path.stat().st_size / 2**20:.1f} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
