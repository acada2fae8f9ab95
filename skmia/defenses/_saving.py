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

    # ------------------------------------------------------------------ resuming

    @property
    def resume_refusal_(self):
        """Why this loaded model cannot be trained further, or None when it can.

        A model loaded with :func:`skmia.io.load_estimator` predicts as saved; training
        it further (``partial_fit``, :meth:`resume_from`) needs what its files keep of
        its training state, and this says what they lack (e.g. a distilled student
        saved without its teacher). None for a model trained in this session, and
        after ``fit``, which trains from scratch.
        """
        return getattr(self, "_resume_refused", None)

    def resume_from(self, rng_state, *, values=None, tensors=None):
        """Continue this loaded model's training from a checkpoint taken after an epoch.

        The next training call (``partial_fit``) then starts from the random generator
        state ``rng_state`` instead of seeding torch anew, so that the training ends as
        one that was never interrupted (bit for bit on the CPU). Run checkpoints
        (:mod:`skmia.experiment`) use it.

        Parameters
        ----------
        rng_state : tuple of (torch.Tensor, list of torch.Tensor)
            torch's CPU generator state (``torch.random.get_rng_state()``, a 1-D
            ``uint8`` tensor) and the CUDA generators' states (possibly empty) as they
            were after the checkpointed epoch.
        values : dict, default=None
            JSON data the defense's class kept in the checkpoint besides the saved model
            (DP-SGD: its noise seed, which the model's files never hold).
        tensors : dict of str to torch.Tensor, default=None
            Named tensors it kept there.

        Returns
        -------
        self : object
            The model, ready to continue with ``partial_fit``.

        Raises
        ------
        ValueError
            When the model cannot be trained further (:attr:`resume_refusal_`), or the
            generator state or the class's checkpoint data is malformed (a KeyError
            when the data lacks a key the class writes).
        """
        import torch

        refused = self.resume_refusal_
        if refused:
            raise ValueError(f"{type(self).__name__} cannot resume this loaded model: "
                             f"{refused}")
        cpu, cuda = rng_state
        if not isinstance(cpu, torch.Tensor) or cpu.dtype != torch.uint8 or cpu.ndim != 1:
            raise ValueError("its random generator state is malformed")
        self._restore_checkpoint_state({} if values is None else values,
                                       {} if tensors is None else tensors)
        self._resume_rng_state = (cpu, list(cuda))
        return self

    def _resumed_rng_state(self):
        """The generator state :meth:`resume_from` left for this training call, or None
        (read once: the call after it seeds as usual)."""
        state = getattr(self, "_resume_rng_state", None)
        self._resume_rng_state = None
        return state

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
