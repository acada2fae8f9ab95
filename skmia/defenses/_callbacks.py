"""The skorch callbacks of the defenses, in one place: the learning-rate schedule and the
seeding every defense trains with, and the hooks of AdvReg, DP-SGD, RelaxLoss and early
stopping into skorch's training loop (they call back into the classifier for what is its own)."""

import math

import numpy as np
import torch
from skorch.callbacks import Callback

__all__ = []


class _StepDecay(Callback):
    """Learning rate ``lr * gamma ** (number of milestones <= epoch)``, set at epoch start.

    The reference code's ``adjust_learning_rate``: at the start of epoch ``e`` (from 0) the
    rate is multiplied by ``gamma`` when ``e`` is a milestone.
    """

    def on_epoch_begin(self, net, **kwargs):
        epoch = len(net.history) - 1
        n_decays = sum(epoch >= m for m in (net.milestones or ()))
        lr = net.lr * net.gamma**n_decays
        for group in net.optimizer_.param_groups:
            group["lr"] = lr
        net.history.record("lr", lr)


class _ObjectiveLog(Callback):
    """Record at each epoch's start which objective ``train_loss`` holds (RelaxLoss
    alternates two, which are not on one scale): ``net._objective_name(epoch)``."""

    reads_network = False  # the batched bank need not write the weights back for it

    def on_epoch_begin(self, net, **kwargs):
        net.history.record("train_objective", net._objective_name(net.current_epoch))


class _SeededTraining(Callback):
    """Seed torch for the duration of a training call, then restore the global state.

    A model resumed from a run's checkpoint (:meth:`MIADefenseClassifier.resume_from`)
    carries the generator state saved after its last epoch: its next training call
    continues from that state instead of seeding anew, as if never interrupted.
    """

    def on_train_begin(self, net, **kwargs):
        self._cpu_state = torch.random.get_rng_state()
        self._cuda_states = (
            torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
        )
        resumed = net._resumed_rng_state()
        if resumed is None:
            torch.manual_seed(net.training_seed_ + len(net.history))
            return
        cpu, cuda = resumed
        torch.random.set_rng_state(cpu)
        if cuda:
            torch.cuda.set_rng_state_all(cuda)

    def on_train_end(self, net, **kwargs):
        torch.random.set_rng_state(self._cpu_state)
        if self._cuda_states is not None:
            torch.cuda.set_rng_state_all(self._cuda_states)


class _AdversarialSchedule(Callback):
    """Inference-network steps between classifier batches, and warm-up passes."""

    def on_epoch_begin(self, net, **kwargs):
        self.n_classifier_batches = 0
        net._inference_log = []

    def on_batch_begin(self, net, batch=None, training=False, **kwargs):
        if not training or net._in_warmup():
            return
        per_round = net.classifier_batches
        if self.n_classifier_batches % (per_round or math.inf) == 0:
            net._train_inference(net.inference_batches)
        self.n_classifier_batches += 1

    def on_epoch_end(self, net, **kwargs):
        if net._in_warmup():
            for _ in range(net.warmup_passes):
                net._train_inference(None)
        log = np.asarray(net._inference_log, dtype=float).reshape(-1, 3)
        n_records = log[:, 2].sum()
        net.history.record("inference_batch_count", len(log))
        if n_records:
            net.history.record("inference_loss", float(log[:, 0] @ log[:, 2] / n_records))
            net.history.record("inference_acc", float(log[:, 1] @ log[:, 2] / n_records))


class _PrivacyLog(Callback):
    """Record ε after every epoch; release the DP machinery and warn at the end."""

    reads_network = False  # ε comes from the accountant

    def on_epoch_end(self, net, **kwargs):
        net.history.record("epsilon", net._update_epsilon())

    def on_train_end(self, net, **kwargs):
        net._release_private_training()
        net._update_epsilon()
        net._warn_if_weak()


class _Snapshots(Callback):
    def on_epoch_end(self, net, **kwargs):
        epoch = len(net.history)  # epochs completed
        if epoch in net.snapshot_epochs_:
            net.snapshots_[epoch] = {
                k: v.detach().to("cpu", copy=True) for k, v in net.module_.state_dict().items()
            }
