"""The reference code's four modes: ``defense``, ``shadow``, ``attack``, ``defense_attack``."""

from .._rundir import RunDirectory
from ._attack import attack
from ._config import check_config
from ._train import load_run, train_all

__all__ = ["run"]


def run(config, mode):
    """Run one of the reference code's modes.

    ``defense`` trains the target on ``target_train``; ``shadow`` trains the same
    method on ``shadow_train``; ``attack`` attacks a finished target with a shadow —
    vanilla by default (trained if missing), the target's own method with
    ``shadow_method="same"``; ``defense_attack`` does both. With ``config.n_jobs > 1``
    the target and the shadow of ``defense_attack`` train at the same time, each on
    ``config.threads`` torch threads, with the weights and results of ``n_jobs=1``.

    Returns
    -------
    result : pathlib.Path or pandas.DataFrame
        The run directory for the training modes, the results table otherwise.
    """
    check_config(config, mode)
    if mode in ("defense", "shadow"):
        return train_all(config, [("target" if mode == "defense" else "shadow", None)])[0]
    if mode == "attack" and not RunDirectory(config.folder).is_complete():
        load_run(config.folder)  # raises the clear error
    trainings = [("shadow", config.shadow_training_method)]
    if mode == "defense_attack":
        trainings.insert(0, ("target", None))
    shadow_dir = train_all(config, trainings)[-1]
    return attack(config.folder, shadow_dir, white_box=config.white_box,
                  data_home=config.data_home, device=config.device, verbose=config.verbose,
                  attacks=config.attacks,
                  reference_models=config.reference_models, n_jobs=config.n_jobs,
                  threads=config.threads)
