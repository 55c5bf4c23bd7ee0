"""Shared fixtures: tiny real media folders built in tmp dirs (see mmdata.testing)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")


def pytest_configure(config: pytest.Config) -> None:
    # the modules of mmdata's warning classes, imported here: xdist's controller imports a worker's warning's
    # module when the warning arrives, on its receiving thread, and a run of a few test files (whose imports
    # had not loaded mmdata.augment.loader) died there in a half-done import of mmdata.augment.image
    # ("INTERNALERROR ... partially initialized module")
    import mmdata.ablate.design  # noqa: F401
    import mmdata.augment.loader  # noqa: F401
    import mmdata.shards.writer  # noqa: F401
    import mmdata.train.loop  # noqa: F401

    # mmdata's per-machine cache (finished jobs' records, remote job locks; mmdata.urls.cache_dir) in a folder of
    # this run, not the user's (~/.cache/mmdata or their MMDATA_CACHE); the CLI tests' processes and xdist's
    # workers inherit it (a worker keeps the one its controller made)
    import shutil
    import tempfile

    if os.environ.get("PYTEST_XDIST_WORKER") and os.environ.get("MMDATA_TEST_CACHE"):
        return
    saved = os.environ.get("MMDATA_CACHE")
    cache = tempfile.mkdtemp(prefix="mmdata-test-cache-")
    os.environ["MMDATA_CACHE"] = os.environ["MMDATA_TEST_CACHE"] = cache

    def restore() -> None:
        shutil.rmtree(cache, ignore_errors=True)
        os.environ.pop("MMDATA_TEST_CACHE", None)
        if saved is None:
            os.environ.pop("MMDATA_CACHE", None)
        else:
            os.environ["MMDATA_CACHE"] = saved

    config.add_cleanup(restore)


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    # the suite runs 2 pytest workers on 2 cores: keep torch from oversubscribing
    import torch

    torch.set_num_threads(1)


def _sigint_state() -> tuple[bool, bool]:
    """(ignored, blocked) of SIGINT as the kernel sees it (/proc: a C library's sigaction does not
    show in Python's ``signal.getsignal``), or Python's view where there is no /proc."""
    import signal

    try:
        fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
        bit = 1 << (signal.SIGINT - 1)
        return bool(int(fields["SigIgn"], 16) & bit), bool(int(fields["SigBlk"], 16) & bit)
    except (OSError, KeyError, ValueError):
        return signal.getsignal(signal.SIGINT) is signal.SIG_IGN, signal.SIGINT in signal.pthread_sigmask(signal.SIG_BLOCK, [])


_SIGINT_AT_START = _sigint_state()


def _restore_sigint(where: str) -> None:
    """Give this process SIGINT as a terminal gives it (Python's handler, unblocked). A session
    launched in the background (``cmd &`` in a script) starts with SIGINT ignored and hands that to
    every process it starts; that is put right silently. A change made by the suite itself warns."""
    import signal
    import warnings

    now = _sigint_state()
    if now == (False, False) and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        return
    signal.signal(signal.SIGINT, signal.default_int_handler)  # re-installs Python's handler in the kernel too
    signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGINT])
    if _SIGINT_AT_START == (False, False):
        warnings.warn(f"SIGINT (ignored, blocked) was {now} {where}; restored", stacklevel=1)


@pytest.fixture(autouse=True)
def _sigint_left_as_found(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    """SIGINT's disposition and blocked state are process-wide and inherited by every subprocess a
    test starts: code that leaves SIGINT ignored or blocked (a test, a fixture of a wider scope, a C
    library it drives) makes every later Ctrl-C test in the same pytest worker fail — drivers that
    never see the Ctrl-C (2026-12-01: four such failures in a suite launched in the background, where
    SIGINT starts ignored). Before and after every test, SIGINT is put as a terminal gives it."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _restore_sigint(f"before {request.node.nodeid} (a fixture or earlier code changed it)")
    _unblock_sigterm(f"before {request.node.nodeid} (a fixture or earlier code blocked it)")
    yield
    _restore_sigint(f"after {request.node.nodeid}")
    _unblock_sigterm(f"after {request.node.nodeid}")


def _unblock_sigterm(where: str) -> None:
    """SIGTERM blocked in this process's main thread is handed to every subprocess a test starts, which
    then never sees its SIGTERM (CI: a SIGTERM test's ``mmdata train`` ran on for 120 s): unblock it,
    warning with ``where`` so that the code that left it blocked is named."""
    import signal
    import warnings

    if signal.SIGTERM in signal.pthread_sigmask(signal.SIG_BLOCK, []):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGTERM])
        warnings.warn(f"SIGTERM was blocked {where}; unblocked", stacklevel=1)


@pytest.fixture
def sample_folder(tmp_path: Path) -> Path:
    """12 samples (PNG + FLAC + TXT + CLS, some audio/text missing) sharing stems."""
    from mmdata.testing import make_sample_folder

    return make_sample_folder(tmp_path / "raw", n=12)


# An interpreter in which `import ray` fails as on a machine without the extra: the import system
# itself refuses it (a meta-path finder first in line); nothing of mmdata is replaced.
_NO_RAY = """import sys
class _NoRay:
    def find_spec(self, name, path=None, target=None):
        if name == "ray" or name.startswith("ray."):
            raise ImportError("No module named 'ray' (blocked by the test)")
        return None
sys.meta_path.insert(0, _NoRay())
from mmdata.cli.main import main
main(sys.argv[1:])
"""


@pytest.fixture
def cli_without_ray():  # noqa: ANN201
    """Run ``mmdata ARGS...`` in a fresh interpreter where Ray cannot be imported; returns the CompletedProcess."""
    import subprocess
    import sys

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-c", _NO_RAY, *map(str, args)], cwd=Path(__file__).parents[1],
                              capture_output=True, text=True, timeout=120)

    return run


# One real local Ray cluster (2 nodes of 1 CPU each, small object stores) for the tests marked `ray`,
# started once per pytest process and torn down at its end: starting one costs ~15-40 s on 2 cores.
# Under `-n 2` each xdist worker that runs a `ray` test starts its own (xdist's loadgroup, which
# would keep them on one worker, does not work with pytest 9: it renames items through a field
# pytest 9 no longer reads).
RAY_OBJECT_STORE = 90 * 1024 * 1024
# The nodes' environment (their worker processes inherit it): each shard task sleeps this long first,
# so tests/shards/test_ray_executor.py can kill a driver between two shards (the writer's test hook).
RAY_NODE_ENV = {"MMDATA_TEST_SHARD_DELAY": "0.25"}


@pytest.fixture(scope="session")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201 — ray.cluster_utils.Cluster, an optional import
    """A started 2-node local Ray cluster; this process is connected to it as a driver. The nodes
    stage datasets read from URLs into a cache of their own (``MMDATA_CACHE``, mmdata/urls.py)."""
    try:
        import ray
        from ray.cluster_utils import Cluster
    except ImportError:
        pytest.skip("Ray is not installed (pip install -e '.[ray]'); --executor ray tests skipped")
    node_env = {**RAY_NODE_ENV, "MMDATA_CACHE": str(tmp_path_factory.mktemp("ray-node-cache"))}
    saved = {k: os.environ.get(k) for k in node_env}
    os.environ.update(node_env)  # only while the nodes start: this process's own writes do not sleep
    try:
        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "object_store_memory": RAY_OBJECT_STORE,
                                                                "include_dashboard": False})
        cluster.add_node(num_cpus=1, object_store_memory=RAY_OBJECT_STORE)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    try:
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, logging_level="WARNING")
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()


@pytest.fixture
def serve_folder():  # noqa: ANN201
    """``serve_folder(DIR)``: a real HTTP server (``python -m http.server``) on 127.0.0.1 serving DIR;
    returns its base URL (read with fsspec's HTTP filesystem, which needs aiohttp); stopped after the test."""
    import re
    import subprocess
    import sys

    pytest.importorskip("aiohttp")
    procs: list[subprocess.Popen] = []

    def serve(folder: Path) -> str:
        proc = subprocess.Popen([sys.executable, "-u", "-m", "http.server", "0", "--bind", "127.0.0.1", "--directory",
                                 str(folder)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        procs.append(proc)
        line = proc.stdout.readline()
        port = re.search(r"port (\d+)", line)
        assert port, line
        return f"http://127.0.0.1:{port.group(1)}"

    yield serve
    for proc in procs:
        proc.kill()
        proc.wait()


class S3:
    """A bucket on the local S3 server (:func:`s3`): ``url`` (``s3://NAME``), ``options`` (the fsspec
    ``storage_options`` that reach it), ``env`` (the same as environment variables, for processes
    such as a CLI driver), ``fs`` (an s3fs filesystem) and :meth:`tree` (every object's bytes)."""

    def __init__(self, endpoint: str, bucket: str) -> None:
        import s3fs

        self.url = f"s3://{bucket}"
        self.options = {"endpoint_url": endpoint, "key": "testing", "secret": "testing"}
        self.env = {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                    "AWS_DEFAULT_REGION": "us-east-1"}
        # fsspec caches filesystems by their arguments, not by the environment: one made without credentials
        # by an earlier test (``url_to_fs(url)`` with none set) would serve a later test that sets them
        s3fs.S3FileSystem.clear_instance_cache()
        self.fs = s3fs.S3FileSystem(**self.options)
        self.fs.mkdir(bucket)

    def tree(self, prefix: str) -> dict[str, bytes]:
        """Every object under ``s3://BUCKET/prefix`` by path relative to it."""
        root = f"{self.url[5:]}/{prefix}".rstrip("/")
        self.fs.invalidate_cache()
        return {p[len(root) + 1:]: self.fs.cat_file(p) for p in sorted(self.fs.find(root))}

    def modified(self, out: str) -> dict[str, object]:
        """``LastModified`` of every shard object (``*.tar``) under the URL ``out``, by path relative to it."""
        root = out[5:].rstrip("/")
        self.fs.invalidate_cache()
        return {p[len(root) + 1:]: info["LastModified"] for p, info in self.fs.find(root, detail=True).items()
                if p.endswith(".tar")}

    def kill_shard_cli(self, src: str, out: str) -> None:
        """Run ``mmdata shard SRC OUT`` as a CLI driver configured by environment variables (as users
        configure the AWS CLI), slowed per shard, and SIGKILL its process group once two shards are
        journaled at ``out``."""
        import subprocess
        import sys
        import time

        env = {**os.environ, **self.env, "MMDATA_TEST_SHARD_DELAY": "0.3"}
        cmd = [sys.executable, "-c", "from mmdata.cli.main import main; main()", "shard", src, out, "--maxcount", "4",
               "--split", "train=0.7,val=0.3", "--seed", "1", "--json"]
        proc = subprocess.Popen(cmd, cwd=Path(__file__).parents[1], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, start_new_session=True)
        deadline = time.time() + 120
        while time.time() < deadline:
            assert proc.poll() is None, proc.stderr.read().decode()
            self.fs.invalidate_cache()
            if sum(p.endswith(".mmj") for p in self.fs.find(f"{out[5:]}/.mmdata-journal")) >= 2:  # finished shards
                break
            time.sleep(0.05)
        os.killpg(proc.pid, 9)
        proc.wait()


@pytest.fixture(scope="session")
def s3_server():  # noqa: ANN201
    """A real S3 protocol server (moto's, in a thread of this process) on 127.0.0.1, a free port;
    its endpoint URL. Skipped without ``moto[server]`` and ``s3fs`` (scripts/setup_env.sh installs them)."""
    import logging

    pytest.importorskip("s3fs")
    server_mod = pytest.importorskip("moto.server")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    server = server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3(s3_server: str) -> S3:
    """A fresh bucket on the local S3 server for one test."""
    import uuid

    return S3(s3_server, f"t-{uuid.uuid4().hex[:12]}")


# the ablation report's figures (tests/ablate and the QA36 ablate tests)
@pytest.fixture
def figures(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The report's figures by file name, as drawn (Figure.savefig recorded, then called)."""
    from matplotlib.figure import Figure

    seen: dict[str, Any] = {}
    save = Figure.savefig

    def record(self: Figure, fname: Any, *a: Any, **kw: Any) -> Any:
        seen[Path(str(fname)).name] = self
        return save(self, fname, *a, **kw)

    monkeypatch.setattr(Figure, "savefig", record)
    return seen
