"""Optimisers on top of the fused in-place update ops.

Penalties, with their exact scaling (applied to weights only — parameters named ``w`` or
``w_*``, such as an RNN's ``w_xh`` and ``w_hh`` — never to biases, as in the seed code):

* ``l2``: the per-minibatch cost gains 0.5·l2·Σw², so the gradient gains l2·w (passed to the
  fused update as ``weight_decay``). network3's ``0.5·λ·Σw²/n_batches`` is ``l2 = λ / n_batches``;
  the DeepLearningTutorials' ``L2_reg·Σw²`` is ``l2 = 2·L2_reg``.
* ``l1``: the cost gains l1·Σ|w|, the gradient l1·sign(w).

``lr`` may be a number or a function of the epoch (a schedule).

State (velocities, moments) is created through the array namespace of its parameter
(``deepnum.ops.array_namespace``), so it lives beside it, on the host or on the device; ``load_state_dict``
and ``place`` put it there too. Adam's step counter is a host value.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

from . import ops

if TYPE_CHECKING:
    from ._typing import Array, IntArray

    Parameters = Iterable[tuple[str, str, Array, Any]]  # (key, name, param, grad), as Sequential.parameters() gives

_HOST = ops.array_namespace()  # the host's namespace: Adam's step counter is a host value


def _is_weight(name):
    return name == "w" or name.startswith("w_")


def _penalised(name, p, g, l1):
    if l1 and _is_weight(name):
        return ops.array_namespace(p).add_l1(g, p, l1)
    return g


class Optimizer:
    """Base: keeps per-parameter state keyed like ``Sequential.parameters()``."""

    host_slots: tuple[str, ...] = ()  # the state slots that stay on the host whatever the parameter's side

    def __init__(self, lr: float | Callable[[int], float], l2: float = 0.0, l1: float = 0.0) -> None:
        name = type(self).__name__
        if not callable(lr) and not lr >= 0:
            raise ValueError(f"{name}: lr must be a number >= 0 or a function of the epoch, got {lr!r}")
        if not (l2 >= 0 and l1 >= 0):
            raise ValueError(f"{name}: l2 and l1 must be >= 0, got l2={l2!r}, l1={l1!r}")
        self.lr, self.l2, self.l1 = lr, l2, l1
        self.state: dict[str, dict[str, Any]] = {}

    def learning_rate(self, epoch: int) -> float:
        """The learning rate for ``epoch``: ``lr`` itself, or ``lr(epoch)`` for a schedule."""
        return self.lr(epoch) if callable(self.lr) else self.lr

    def fused_mlp_step_args(self, epoch: int) -> dict[str, float] | None:
        """The ``lr`` and ``weight_decay`` arguments of :func:`deepnum.ops.mlp_train_step` when that one
        fused call computes this optimiser's step, else None (here: never; see :class:`SGD`)."""
        return None

    def config(self) -> dict[str, Any]:
        """The hyper-parameters, JSON-serialisable (a schedule is recorded as "schedule")."""
        return {"type": type(self).__name__, "lr": "schedule" if callable(self.lr) else self.lr, "l2": self.l2,
                "l1": self.l1, **self._extra_config()}

    def _extra_config(self):
        return {}

    def state_dict(self) -> dict[str, Array | IntArray]:
        """The state keyed "<parameter key>.<slot>" (the arrays themselves, each on its parameter's side)."""
        return {f"{key}.{slot}": a for key, slots in self.state.items() for slot, a in slots.items()}

    def load_state_dict(self, arrays: Mapping[str, Array | IntArray], params: Parameters) -> None:
        """State from ``state_dict()``'s arrays (NumPy arrays or DeviceArrays, as a checkpoint or another
        optimiser gives them): copies, each beside its parameter. ``params`` yields (key, name, param, grad)
        as ``Sequential.parameters()`` does; state for a key not among them is a ValueError."""
        beside = {key: p for key, _, p, _ in params}
        state: dict[str, dict[str, Any]] = {}
        for full, a in arrays.items():
            key, slot = full.rsplit(".", 1)
            if key not in beside:
                raise ValueError(f"{type(self).__name__}.load_state_dict: state {full} belongs to no parameter "
                                 f"(the model has {', '.join(beside) or 'none'})")
            state.setdefault(key, {})[slot] = self._beside(slot, a, beside[key], copy=True)
        self.state = state

    def place(self, params: Parameters) -> None:
        """Moves the state beside its parameters after they moved (``Sequential.to``); ``params`` as for
        ``load_state_dict``. State already beside its parameter is not copied."""
        beside = {key: p for key, _, p, _ in params}
        for key, slots in self.state.items():
            for slot, a in slots.items():
                slots[slot] = self._beside(slot, a, beside[key])

    def _beside(self, slot, a, p, copy=False):
        """``a`` on the side of parameter ``p`` in its dtype, or on the host for the ``host_slots``."""
        if slot in self.host_slots:
            return ops.placed(a, _HOST, copy=copy)
        return ops.placed(a, ops.array_namespace(p), p.dtype, copy=copy, who=f"{type(self).__name__} state {slot}")


class SGD(Optimizer):
    """Minibatch SGD, optionally with momentum (heavy-ball or Nesterov)."""

    def __init__(self, lr: float | Callable[[int], float], momentum: float = 0.0, nesterov: bool = False,
                 l2: float = 0.0, l1: float = 0.0) -> None:
        super().__init__(lr, l2, l1)
        if not 0 <= momentum < 1:
            raise ValueError(f"SGD: momentum must be in [0, 1), got {momentum!r}")
        if nesterov and momentum == 0:
            raise ValueError("SGD: nesterov=True needs a momentum > 0")
        self.momentum, self.nesterov = momentum, nesterov

    def _extra_config(self):
        return {"momentum": self.momentum, "nesterov": self.nesterov}

    def fused_mlp_step_args(self, epoch: int) -> dict[str, float] | None:
        """Plain SGD (no momentum, no L1; L2 is the kernel's weight decay) is one fused step:
        ``{"lr": ..., "weight_decay": l2}`` for epoch ``epoch``. A subclass with its own ``step`` is not."""
        if self.momentum != 0 or self.l1 or type(self).step is not SGD.step:
            return None
        return {"lr": self.learning_rate(epoch), "weight_decay": self.l2}

    def step(self, params: Parameters, epoch: int) -> None:
        """``params`` yields (key, name, param, grad); updates every param in place."""
        lr = self.learning_rate(epoch)
        for key, name, p, g in params:
            velocity = None
            if self.momentum > 0:
                slots = self.state.setdefault(key, {})
                if "velocity" not in slots:
                    slots["velocity"] = ops.array_namespace(p).zeros(p.shape, p.dtype)
                velocity = slots["velocity"]
            ops.sgd_update(p, _penalised(name, p, g, self.l1), lr, self.momentum, velocity, self.nesterov,
                           self.l2 if _is_weight(name) else 0.0)


class Adam(Optimizer):
    """Adam (Kingma & Ba) with bias correction."""

    host_slots = ("t",)  # the step counter, read on the host every step

    def __init__(self, lr: float | Callable[[int], float] = 1e-3, beta1: float = 0.9, beta2: float = 0.999,
                 eps: float = 1e-8, l2: float = 0.0, l1: float = 0.0) -> None:
        super().__init__(lr, l2, l1)
        if not (0 <= beta1 < 1 and 0 <= beta2 < 1 and eps > 0):
            raise ValueError(f"Adam: need 0 <= beta1, beta2 < 1 and eps > 0, got beta1={beta1!r}, "
                             f"beta2={beta2!r}, eps={eps!r}")
        self.beta1, self.beta2, self.eps = beta1, beta2, eps

    def _extra_config(self):
        return {"beta1": self.beta1, "beta2": self.beta2, "eps": self.eps}

    def step(self, params: Parameters, epoch: int) -> None:
        """``params`` yields (key, name, param, grad); updates every param in place, with bias-corrected
        moments (created beside each parameter at its first step)."""
        lr = self.learning_rate(epoch)
        for key, name, p, g in params:
            s = self.state.setdefault(key, {})
            if "m" not in s:
                xp = ops.array_namespace(p)
                s["m"], s["v"], s["t"] = xp.zeros(p.shape, p.dtype), xp.zeros(p.shape, p.dtype), _HOST.zeros(1, "int64")
            s["t"][0] += 1
            ops.adam_update(p, _penalised(name, p, g, self.l1), s["m"], s["v"], int(s["t"][0]), lr, self.beta1,
                            self.beta2, self.eps, self.l2 if _is_weight(name) else 0.0)
