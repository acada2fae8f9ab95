import functools
import http.server
import importlib.util
import os
import threading
from pathlib import Path

import pytest

if os.environ.get("PYTEST_XDIST_WORKER"):
    # two xdist workers on two cores: one torch thread each beats oversubscription, and
    # the subprocesses some tests start (the console script, benchmarks) inherit it
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)

LOCATION_ARCHIVE = "dataset_location.tgz"
# ../shared/data beside the checkout holds the real Location30 archive (DESIGN §2): the
# README's test command and CI then run the same tests, with or without SKMIA_DATA_HOME
_SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
if not os.environ.get("SKMIA_DATA_HOME") and (_SHARED_DATA / LOCATION_ARCHIVE).is_file():
    os.environ["SKMIA_DATA_HOME"] = str(_SHARED_DATA)


BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"

# Modules whose tests train banks, CIFAR networks or whole runs, start subprocesses, run
# benchmark scripts or scikit-learn's estimator checks: marked ``slow`` so that
# ``pytest -m "not slow"`` is the fast loop a developer lives in (the README says how long
# it takes). The README's test command, and CI, still run everything. One list, here,
# rather than a mark in each file: a module's file name (its stem), wherever it lies
# under tests/.
SLOW_MODULES = frozenset({
    "test_advreg", "test_audit_defense", "test_audit_defense_cli", "test_audit_dp",
    "test_audit_dp_cli", "test_audit_dp_runs", "test_audit_html_page", "test_audit_model",
    "test_audit_threat_models", "test_bank_parallel", "test_benchmarks_reference_bank",
    "test_cifar_runs", "test_common_attacks", "test_common_defenses", "test_compare",
    "test_conv_nets", "test_cross_checks", "test_defaults_defenses",
    "test_defaults_scorers", "test_docs_examples", "test_dp_accounting", "test_experiment",
    "test_experiment_cli", "test_experiment_jobs", "test_fprs", "test_html_report",
    "test_image_defenses", "test_location_grid_benchmark", "test_lock", "test_memguard",
    "test_privacy_utility_benchmark", "test_readme", "test_reference_attacks_benchmark",
    "test_reference_leak", "test_reference_models", "test_reference_runs", "test_relaxloss",
    "test_reliability_audit", "test_reliability_interrupt", "test_reliability_report",
    "test_report_rows", "test_resume", "test_resume_console", "test_resume_ctrl_c",
    "test_resume_defenses", "test_rundir", "test_speed_benchmarks", "test_vectorized_bank",
    "test_vectorized_dpsgd", "test_vectorized_interrupts", "test_vectorized_threads",
    "test_warn_once",
})


def pytest_collection_modifyitems(config, items):
    missing = SLOW_MODULES - {path.stem for path in Path(__file__).parent.rglob("test_*.py")}
    if missing:  # a renamed or removed module would leave the list silently
        raise pytest.UsageError(f"SLOW_MODULES names no file under tests/: {sorted(missing)}")
    for item in items:
        if item.path.stem in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)



@pytest.fixture(scope="session")
def benchmark_script():
    """``load(name)``: ``benchmarks/<name>.py`` imported as a fresh module (main() not run)."""

    def load(name):
        spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load


@pytest.fixture(scope="session")
def location_data_home():
    """The data home holding the real Location30 archive, or skip saying why."""
    home = os.environ.get("SKMIA_DATA_HOME")
    if not home:
        pytest.skip(
            f"SKMIA_DATA_HOME is not set and {_SHARED_DATA} has no {LOCATION_ARCHIVE}: the "
            "real Location30 archive is not available"
        )
    if not (Path(home) / LOCATION_ARCHIVE).is_file():
        pytest.skip(f"{LOCATION_ARCHIVE} is not in SKMIA_DATA_HOME={home}")
    return Path(home)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def http_root(tmp_path):
    """Serve a fresh folder over HTTP on localhost; yields ``(folder, base_url)``."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
