"""What the end-to-end tests of the ``skmia`` command share (test_experiment*.py)."""

import numpy as np
import pandas as pd

from skmia.cli import main
from skmia.experiment import method_classes

METHODS = tuple(method_classes())


BLACK_BOX = ["NN", "confidence", "entropy", "modified entropy", "loss"]


def skmia(*args):
    return main([str(a) for a in args])


def run_dir(out, method):
    return out / "location" / method / "seed1000"


def _tensors(folder):
    from safetensors.numpy import load_file

    return load_file(folder / "model.safetensors")


def _assert_same_runs(first, second, results_first, results_second):
    pd.testing.assert_frame_equal(results_first, results_second)
    for name in ("", "shadow"):
        one = _tensors(run_dir(first, "relaxloss") / name)
        two = _tensors(run_dir(second, "relaxloss") / name)
        assert one.keys() == two.keys() and one
        for key in one:
            np.testing.assert_array_equal(one[key], two[key], err_msg=f"{name} {key}")


def _config(out, data_home, jobs, quiet=True):
    from skmia.experiment import RunConfig

    return RunConfig(dataset="location", method="relaxloss", epochs=2, out=str(out),
                     data_home=str(data_home), white_box=False, verbose=int(not quiet),
                     shadow_method="same", n_jobs=jobs)
