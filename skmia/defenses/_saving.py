"""What a defense saves and restores: the declarations :mod:`skmia.io` and the run
checkpoints read (DESIGN §6: what a defense saves is declared by the defense)."""

from .._rundir import Int, ListOf

__all__ = ["SavedDefense"]


class SavedDefense:
    """Mixin of :class:`~skmia.defenses.MIADefenseClassifier`: the tables of fitted
    attributes and the hooks through which a subclass saves and restores its own state.
    """

    # ------------------------------------------------------------------ checkpoints

    def _checkpoint_state(self):
        """What a run's checkpoint keeps beyond :func:`skmia.experiment.save_estimator`'s
        files to continue this training: ``(values, tensors)``, JSON data and named
        tensors, or None when the training cannot be continued from a checkpoint."""
        return {}, {}

    def _restore_checkpoint_state(self, values, tensors):
        """Put back what :meth:`_checkpoint_state` gave, on the checkpoint's loaded model;
        a ValueError or KeyError when it is not what this class writes."""

    # ------------------------------------------------------------------ saving (skmia.io)

    #: The fitted attributes :func:`skmia.io.save_estimator` keeps in ``model.json``,
    #: each with its JSON type (a :func:`skmia._rundir.check_json` spec); a subclass
    #: extends its parent's table. A fitted attribute of none of these tables (nor of
    #: ``_state_attributes``) makes ``save_estimator`` refuse the model.
    _fitted_attributes = {"input_shape_": ListOf(Int(0)), "n_features_in_": Int(0),
                          "init_seed_": Int(), "training_seed_": Int(),
                          "train_digest_": str}
    #: Fitted attributes that :meth:`_saved_state` saves.
    _state_attributes = ()
    #: Fitted attributes never written (name -> what it is, ``{}`` the class name);
    #: :meth:`_draw_unsaved` gives a loaded model new ones.
    _unsaved_attributes = {}
    #: Fitted attributes a saved model may lack.
    _optional_attributes = ("train_digest_",)

    def _saved_state(self):
        """What :func:`skmia.io.save_estimator` keeps beyond the networks, optimizers,
        history and ``_fitted_attributes``: ``(values, tensors, estimators)``, JSON data,
        named tensors and fitted skmia defenses (saved whole, without optimizer state)."""
        return {}, {}, {}

    def _restore_saved_state(self, values, tensors, estimators):
        """Put back what :meth:`_saved_state` gave, on a loaded model whose networks are
        built; a ValueError or KeyError naming what does not fit."""
        if values or tensors or estimators:
            raise ValueError(f"a {type(self).__name__} saves no state of its own")

    def _draw_unsaved(self):
        """New values of the ``_unsaved_attributes`` of a loaded model."""
