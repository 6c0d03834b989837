#!/usr/bin/env python3
"""Picks a small regression corpus for one fuzz target out of its (minimised) fuzzing corpus.

    python3 fuzz/select_regressions.py TARGET [LIMIT]

Asks libFuzzer which coverage features each input of fuzz/corpus/TARGET reaches (a merge into
an empty folder with -merge_control_file, through `cargo +nightly fuzz run`), then fills
fuzz/regressions/TARGET/: the seeds of fuzz/seeds.py first (seed-*, readable real-looking
inputs), then greedily, each time the input that adds the most features not yet covered (the smaller on a tie), up to
LIMIT files (default 200) or until nothing adds a feature. Inputs over 16 KiB are left out.
CARGO_FUZZ_TARGET_DIR, when set, is passed to cargo fuzz as --target-dir.
Files already in fuzz/regressions/TARGET/ named crash-* (minimised findings) are kept. See
docs/fuzzing.md.
"""

import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

FUZZ = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(FUZZ))
import seeds  # noqa: E402  (fuzz/seeds.py)

MAX_SIZE = 16 * 1024


def features(target):
    """{path: set of libFuzzer features} for every input of the target's corpus."""
    corpus = FUZZ / "corpus" / target
    with tempfile.TemporaryDirectory() as tmp:
        control = pathlib.Path(tmp) / "control"
        out = pathlib.Path(tmp) / "merged"
        out.mkdir()
        target_dir = os.environ.get("CARGO_FUZZ_TARGET_DIR")
        subprocess.run(
            ["nice", "-n", "19", "cargo", "+nightly", "fuzz", "run"]
            + (["--target-dir", target_dir] if target_dir else [])
            + [target, str(out), str(corpus), "--", "-merge=1",
               f"-merge_control_file={control}", "-rss_limit_mb=2048", "-malloc_limit_mb=256",
               "-timeout=10"],
            cwd=FUZZ.parent, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        lines = control.read_text().splitlines()
    n = int(lines[0])
    paths = [pathlib.Path(p) for p in lines[2 : 2 + n]]
    found = {}
    for line in lines[2 + n :]:
        parts = line.split()
        if parts and parts[0] == "FT":
            found[paths[int(parts[1])]] = set(map(int, parts[2:]))
    return found


def main():
    target = sys.argv[1]
    limit = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    found = features(target)
    seed_files = seeds.seeds_of(target)
    candidates = {p: f for p, f in found.items() if p.stat().st_size <= MAX_SIZE}
    covered = set()
    chosen = []
    while len(seed_files) + len(chosen) < limit and candidates:
        best = max(candidates, key=lambda p: (len(candidates[p] - covered), -p.stat().st_size))
        if not candidates[best] - covered:
            break
        covered |= candidates.pop(best)
        chosen.append(best)
    folder = FUZZ / "regressions" / target
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.iterdir():
        if not old.name.startswith("crash-"):
            old.unlink()
    for name, data in seed_files.items():
        (folder / name).write_bytes(data)
    for p in chosen:
        shutil.copyfile(p, folder / p.name)
    everything = set().union(*found.values()) if found else set()
    print(
        f"{target}: {len(seed_files)} seeds and {len(chosen)} of {len(found)} inputs kept in "
        f"{folder}, covering {len(covered)} of {len(everything)} features"
    )


if __name__ == "__main__":
    main()
