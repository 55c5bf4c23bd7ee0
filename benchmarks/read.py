"""Read throughput: mmdata vs litdata, mosaicml-streaming (MDS), Hugging Face Arrow and webdataset.

Every reader serves the same samples (one JPEG, one FLAC, a ~100-character caption, an integer label),
each stored in its own format: mmdata's dataset folder (WebDataset tars + index.parquet), litdata
chunks, MDS shards, an Arrow dataset (``save_to_disk``); webdataset reads mmdata's tars.

* raw: what the reader gives without decoding (bytes, str, int).
* decoded: image uint8 CHW tensor, audio float32 (channels, time) tensor, text str, label int. Peers
  decode with PIL + soundfile, as their docs do (``--peer-decoders mmdata`` gives them mmdata's
  decoders instead, to separate the reader from the decoders).
* single process, and a DataLoader with 2 workers (batches of 64 as lists, no collation).

Passes are interleaved (every reader once, then again...), the best of ``--passes`` counts, and the
ratios printed are mmdata / peer from this one run. ``--memory`` also runs one decoded pass per reader
in its own process and reports its peak RSS.

Run: .venv/bin/python benchmarks/read.py --profile small   (20,000 x 64x64 JPEG + 1 s 16 kHz FLAC)
     .venv/bin/python benchmarks/read.py --profile large   (224x224 JPEG + 5 s FLAC; --n 2000 default)
Peers: pip install -e '.[bench]' (webdataset, litdata, HF datasets). The MDS reader needs
mosaicml-streaming, which is not in the extra: every release pins numpy below this project's (pip
cannot resolve it beside numpy 2.x, or downgrades numpy in the venv). Install it apart, without its
pins, and put it on the path of the benchmark only:
    pip install --target /tmp/peers --no-deps mosaicml-streaming==0.11.0
    PYTHONPATH=/tmp/peers .venv/bin/python benchmarks/read.py --readers mmdata,mds
a module it imports that the venv lacks is then named by the ImportError (install it the same way).
mosaicml-streaming imports torchvision at import time, which has no build beside torch 2.13 CPU: when
it does not import, a stub module stands in (MDS reading never calls it) — see _import_streaming.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine  # noqa: E402

PROFILES = {"small": {"n": 20000, "image": 64, "seconds": 1.0}, "large": {"n": 2000, "image": 224, "seconds": 5.0}}
READERS = ("mmdata", "litdata", "mds", "hf", "webdataset")
COPIES = ("mmdata", "litdata", "mds", "hf")  # the folders under the cache; webdataset reads mmdata's
COPY = {"webdataset": "mmdata"}
# reader -> (module it imports, pip package); the peers' packages come with the bench extra
NEEDS = {"mmdata": ("mmdata", "mmdata"), "litdata": ("litdata", "litdata"), "mds": ("streaming", "mosaicml-streaming"),
         "hf": ("datasets", "datasets"), "webdataset": ("webdataset", "webdataset")}
PEER_DECODERS = "pil"


# ---- data ----------------------------------------------------------------------------------------------
def _caption(i: int) -> str:
    from mmdata.testing import text_for

    words = (text_for(i) + " ") * 8
    return words[:100].strip()


def _make_raw(root: Path, n: int, image: int, seconds: float) -> None:
    from mmdata.testing import audio_bytes, image_bytes

    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        k = root / f"{i:06d}"
        k.with_suffix(".jpg").write_bytes(image_bytes(i, size=(image, image), fmt="jpg"))
        k.with_suffix(".flac").write_bytes(audio_bytes(i, seconds=seconds, sample_rate=16000))
        k.with_suffix(".txt").write_text(_caption(i), encoding="utf-8")
        k.with_suffix(".cls").write_text(str(i % 10), encoding="utf-8")


class _LitItem:
    """One sample as a dict (picklable: litdata spawns its workers)."""

    def __init__(self, raw: Path) -> None:
        self.raw = raw

    def __call__(self, i: int) -> dict[str, Any]:
        k = self.raw / f"{i:06d}"
        return {"jpg": k.with_suffix(".jpg").read_bytes(), "flac": k.with_suffix(".flac").read_bytes(),
                "txt": k.with_suffix(".txt").read_text(encoding="utf-8"), "cls": int(k.with_suffix(".cls").read_text())}


def build(cache: Path, profile: str, n: int, readers: tuple[str, ...] | list[str] = READERS) -> Path:
    """Write the samples once per (profile, n) in the formats ``readers`` read (webdataset reads mmdata's
    tars); returns the folder. Each copy is written once, when a reader first needs it."""
    p = PROFILES[profile]
    root = cache / f"{profile}-{n}"
    if (root / "done.json").exists():  # a cache written before copies were built one by one: all of them
        return root
    subs = [sub for sub in COPIES if any(COPY.get(r, r) == sub for r in readers)]
    todo = [sub for sub in subs if not (root / f"{sub}.done").exists()]
    if not todo:
        return root
    import shutil

    import mmdata

    raw = root / "raw"
    if not (raw / f"{n - 1:06d}.cls").exists():
        _make_raw(raw, n, p["image"], p["seconds"])
    item = _LitItem(raw)
    items = [item(i) for i in range(n)] if {"mds", "hf"} & set(todo) else []
    for sub in todo:
        t0 = time.perf_counter()
        shutil.rmtree(root / sub, ignore_errors=True)
        if sub == "mmdata":
            mmdata.shard(raw, root / "mmdata", maxcount=max(1, n // 10), progress=False)
        elif sub == "litdata":
            from litdata import optimize

            optimize(fn=item, inputs=list(range(n)), output_dir=str(root / "litdata"), chunk_bytes="64MB", num_workers=1,
                     verbose=False, reorder_files=False, keep_data_ordered=True)
        elif sub == "mds":
            streaming = _import_streaming()
            with streaming.MDSWriter(out=str(root / "mds"), columns={"jpg": "bytes", "flac": "bytes", "txt": "str", "cls": "int"},
                                     size_limit=1 << 26) as w:
                for it in items:
                    w.write(it)
        elif sub == "hf":
            import datasets

            features = datasets.Features({"jpg": datasets.Value("binary"), "flac": datasets.Value("binary"),
                                          "txt": datasets.Value("string"), "cls": datasets.Value("int64")})
            datasets.Dataset.from_dict({k: [it[k] for it in items] for k in features},
                                       features=features).save_to_disk(str(root / "hf"))
        (root / f"{sub}.done").write_text(json.dumps({"n": n, "build_s": round(time.perf_counter() - t0, 1)}))
    return root


def missing_packages(readers: list[str]) -> list[tuple[str, str]]:
    """(reader, pip package) for each chosen reader whose package does not import."""
    import importlib.util

    out = []
    for r in readers:
        module, package = NEEDS[r]
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            out.append((r, package))
    return out


def _import_streaming() -> Any:
    try:
        import streaming
    except (ImportError, RuntimeError):
        import importlib.machinery
        import types

        for name in ("torchvision", "torchvision.datasets", "torchvision.transforms", "torchvision.transforms.functional"):
            mod = types.ModuleType(name)
            mod.__spec__ = importlib.machinery.ModuleSpec(name, None, is_package=True)
            mod.__path__ = []  # type: ignore[attr-defined]
            sys.modules[name] = mod
        sys.modules["torchvision.datasets"].VisionDataset = type("VisionDataset", (), {})  # type: ignore[attr-defined]
        sys.modules["torchvision.transforms.functional"].to_tensor = None  # type: ignore[attr-defined]
        sys.modules["torchvision"].datasets = sys.modules["torchvision.datasets"]  # type: ignore[attr-defined]
        sys.modules["torchvision"].transforms = sys.modules["torchvision.transforms"]  # type: ignore[attr-defined]
        import streaming
    return streaming


# ---- decoding for peers ----------------------------------------------------------------------------------
def _peer_decode(s: dict[str, Any]) -> dict[str, Any]:
    """What a peer's user writes: PIL for the image, soundfile for the audio (or mmdata's decoders)."""
    if PEER_DECODERS == "mmdata":
        from mmdata.codecs import decode_audio, decode_image

        audio, sr = decode_audio(s["flac"])
        return {"image": decode_image(s["jpg"]), "audio": audio, "sample_rate": sr, "text": _text(s["txt"]),
                "label": int(s["cls"])}
    import numpy as np
    import soundfile as sf
    import torch
    from PIL import Image

    with Image.open(io.BytesIO(s["jpg"])) as im:
        img = torch.from_numpy(np.array(im.convert("RGB")).transpose(2, 0, 1).copy())
    arr, sr = sf.read(io.BytesIO(s["flac"]), dtype="float32", always_2d=True)
    return {"image": img, "audio": torch.from_numpy(np.ascontiguousarray(arr.T)), "sample_rate": sr,
            "text": _text(s["txt"]), "label": int(s["cls"])}


def _text(v: Any) -> str:
    return v.decode("utf-8") if isinstance(v, bytes) else str(v)


def _wds_decode(s: dict[str, Any]) -> dict[str, Any]:
    return _peer_decode({"jpg": s["jpg"], "flac": s["flac"], "txt": s["txt"], "cls": s["cls"]})


def _as_list(batch: list[Any]) -> list[Any]:
    return batch


# ---- readers -----------------------------------------------------------------------------------------
def make_reader(name: str, root: Path, decoded: bool) -> Any:
    """An iterable of samples (decoded or raw) for one reader."""
    if name == "mmdata":
        import mmdata

        return mmdata.open_dataset(root / "mmdata", decode=decoded)
    if name == "webdataset":
        import webdataset as wds

        shards = sorted(str(p) for p in (root / "mmdata").glob("train-*.tar"))
        ds = wds.WebDataset(shards, shardshuffle=False, empty_check=False, nodesplitter=wds.split_by_node,
                            workersplitter=wds.split_by_worker)
        return ds.map(_wds_decode) if decoded else ds
    if name == "litdata":
        from litdata import StreamingDataset

        return StreamingDataset(str(root / "litdata"), transform=_peer_decode if decoded else None)
    if name == "mds":
        streaming = _import_streaming()

        class MDS(streaming.StreamingDataset):  # type: ignore[misc, name-defined]
            def __getitem__(self, i: int) -> Any:
                s = super().__getitem__(i)
                return _peer_decode(s) if decoded else s

        from streaming.base.util import clean_stale_shared_memory

        clean_stale_shared_memory()
        return MDS(local=str(root / "mds"), shuffle=False, batch_size=64)
    if name == "hf":
        import datasets

        ds = datasets.load_from_disk(str(root / "hf"))
        return _HF(ds, decoded)
    raise ValueError(name)


class _HF:
    """Arrow rows as a map-style dataset (DataLoader) and a fast iterator (single process)."""

    def __init__(self, ds: Any, decoded: bool) -> None:
        self.ds = ds
        self.decoded = decoded

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, i: int) -> Any:
        s = self.ds[i]
        return _peer_decode(s) if self.decoded else s

    def __getitems__(self, idx: list[int]) -> list[Any]:
        batch = self.ds[idx]
        rows = [dict(zip(batch, vals)) for vals in zip(*batch.values())]
        return [_peer_decode(r) for r in rows] if self.decoded else rows

    def __iter__(self) -> Any:
        for s in self.ds:
            yield _peer_decode(s) if self.decoded else s


def run_pass(name: str, root: Path, decoded: bool, workers: int, limit: int | None = None) -> int:
    """One pass (or its first ``limit`` samples); returns the number of samples seen."""
    import itertools

    from torch.utils.data import DataLoader

    ds = make_reader(name, root, decoded)
    if workers == 0:
        return sum(1 for _ in itertools.islice(ds, limit))
    # fork, as a Linux training job gets by default (litdata's optimize switches the default to spawn)
    dl = DataLoader(ds, batch_size=64, num_workers=workers, collate_fn=_as_list, persistent_workers=False,
                    multiprocessing_context="fork")
    return sum(len(b) for b in itertools.islice(dl, None if limit is None else limit // 64))


def measure(root: Path, readers: list[str], decoded: bool, workers: int, passes: int) -> dict[str, float]:
    best = {r: float("inf") for r in readers}
    count: dict[str, int] = {}
    for r in readers:  # warm-up: imports, page cache, caches of the index
        run_pass(r, root, decoded, workers, limit=1024)
    for p in range(passes):
        # rotate the order every pass (and start each setting elsewhere), so no reader always goes first
        shift = (p + len(readers) * decoded + workers) % len(readers)
        for r in readers[shift:] + readers[:shift]:
            t0 = time.perf_counter()
            count[r] = run_pass(r, root, decoded, workers)
            best[r] = min(best[r], time.perf_counter() - t0)
    n = max(count.values())
    for r in readers:
        if count[r] != n:
            print(f"  warning: {r} saw {count[r]} samples, expected {n}")
    return {r: n / best[r] for r in readers}


def peak_rss_mb(root: Path, reader: str, decoded: bool) -> float:
    # VmHWM, not ru_maxrss: Linux keeps ru_maxrss across exec, so a child would report its parent's peak
    code = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import read; "
            f"read.run_pass({reader!r}, read.Path({str(root)!r}), {decoded}, 0); "
            "print([l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(out.stdout.strip().splitlines()[-1]) / 1024


def table(runs: list[dict[str, Any]]) -> str:
    """Markdown rows: per (profile, setting) mmdata's median samples/s and, per peer and for the best
    peer of each run, the median (min-max) of mmdata / peer over the runs."""
    import statistics

    peers = [r for r in READERS if r != "mmdata"]
    rows = ["| profile | setting | runs | mmdata samples/s (median) | " + " | ".join(f"/ {p}" for p in peers) + " | / best peer |",
            "|---|---|---:|---:|" + "---:|" * (len(peers) + 1)]
    groups: dict[tuple[str, int, str], list[dict[str, float]]] = {}
    for run in runs:
        for setting, rates in run["rates"].items():
            groups.setdefault((run["profile"], run["n"], setting), []).append(rates)

    def spread(values: list[float]) -> str:
        return f"{statistics.median(values):.2f}x ({min(values):.2f}-{max(values):.2f})" if values else "-"

    for (profile, n, setting), rs in sorted(groups.items()):
        cells = [spread([r["mmdata"] / r[p] for r in rs if p in r]) for p in peers]
        best = spread([r["mmdata"] / max(v for k, v in r.items() if k != "mmdata") for r in rs])
        rows.append(f"| {profile} ({n:,}) | {setting} | {len(rs)} | {statistics.median(r['mmdata'] for r in rs):,.0f} | "
                    + " | ".join(cells) + f" | {best} |")
    return "\n".join(rows)


def main() -> None:
    global PEER_DECODERS
    ap = argparse.ArgumentParser()
    ap.add_argument("--profile", choices=sorted(PROFILES), default="small")
    ap.add_argument("--n", type=int, default=None)
    ap.add_argument("--passes", type=int, default=2)
    ap.add_argument("--readers", default=",".join(READERS),
                    help="comma-separated; only the copies these read are built (peers: pip install -e '.[bench]')")
    ap.add_argument("--modes", default="raw,decoded", help="raw,decoded (none: only --memory)")
    ap.add_argument("--workers", default="0,2", help="DataLoader workers per setting (0 = single process)")
    ap.add_argument("--peer-decoders", choices=["pil", "mmdata"], default="pil")
    ap.add_argument("--memory", action="store_true")
    ap.add_argument("--cache", default=os.environ.get("MMDATA_BENCH_CACHE", "/tmp/mmdata-bench"))
    ap.add_argument("--json", default=None, help="append results as one JSON line to this file")
    ap.add_argument("--table", default=None, metavar="JSONL",
                    help="print the RESULTS.md table (median and min-max ratio over the runs in JSONL) and exit")
    args = ap.parse_args()
    if args.table:
        print(table([json.loads(line) for line in Path(args.table).read_text().splitlines() if line.strip()]))
        return
    PEER_DECODERS = args.peer_decoders
    os.environ["MMDATA_BENCH_PEER_DECODERS"] = args.peer_decoders
    readers = args.readers.split(",")
    unknown = [r for r in readers if r not in READERS]
    if unknown:
        ap.error(f"unknown reader(s) {', '.join(unknown)}; choose from {','.join(READERS)}")
    missing = missing_packages(readers)
    if missing:
        print("read.py: " + "; ".join(f"reader {r} needs the package {pkg}" for r, pkg in missing)
              + f" (not installed): pip install -e '.[bench]' (mosaicml-streaming for mds: apart, see this script's "
              f"docstring), or leave {'them' if len(missing) > 1 else 'it'} out of --readers",
              file=sys.stderr)
        sys.exit(2)
    import torch

    torch.set_num_threads(1)
    n = args.n or PROFILES[args.profile]["n"]
    root = build(Path(args.cache), args.profile, n, readers)
    print(f"profile {args.profile}: {n} samples; {machine()}; load average {os.getloadavg()[0]:.1f}")
    results: dict[str, Any] = {"profile": args.profile, "n": n, "peer_decoders": args.peer_decoders, "rates": {}}
    for mode in [m for m in args.modes.split(",") if m in ("raw", "decoded")]:
        for w in (int(x) for x in args.workers.split(",")):
            rates = measure(root, readers, mode == "decoded", w, args.passes)
            setting = f"{mode}, {'single process' if w == 0 else f'DataLoader {w} workers'}"
            results["rates"][setting] = rates
            peers = {r: v for r, v in rates.items() if r != "mmdata"}
            best_peer = max(peers, key=peers.get) if peers else None
            print(f"{setting}:")
            for r, v in sorted(rates.items(), key=lambda kv: -kv[1]):
                ratio = f"  mmdata / {r} = {rates['mmdata'] / v:.2f}x" if r != "mmdata" and "mmdata" in rates else ""
                print(f"  {r:11s} {v:9.0f} samples/s{ratio}")
            if best_peer and "mmdata" in rates:
                print(f"  -> mmdata / best peer ({best_peer}) = {rates['mmdata'] / peers[best_peer]:.2f}x")
    if args.memory:
        results["peak_rss_mb"] = {}
        print("peak RSS of one decoded single-process pass, own process (MB):")
        for r in readers:
            results["peak_rss_mb"][r] = mb = peak_rss_mb(root, r, True)
            print(f"  {r:11s} {mb:7.0f}")
    if args.json:
        with open(args.json, "a", encoding="utf-8") as f:
            f.write(json.dumps(results) + "\n")


if __name__ == "__main__":
    if os.environ.get("MMDATA_BENCH_PEER_DECODERS"):
        PEER_DECODERS = os.environ["MMDATA_BENCH_PEER_DECODERS"]
    main()
