"""Several trained models voting. Host side: the members' predictions are brought to the host
(``to_host`` of their namespace) and combined with NumPy; the result is a NumPy array."""
import numpy as np

from . import ops


def _host(a):
    return ops.array_namespace(a).to_host(a)


class Ensemble:
    """Several trained models voting: ``vote="majority"`` (plurality of predicted labels, ties to
    the smaller label) or ``"mean"`` (argmax of the mean probabilities)."""

    def __init__(self, members, vote="majority"):
        if vote not in ("majority", "mean"):
            raise ValueError(f"Ensemble: vote must be 'majority' or 'mean', got {vote!r}")
        self.members, self.vote = list(members), vote
        if not self.members:
            raise ValueError("Ensemble: needs at least one member")
        self.layers = self.members[0].layers  # for plots of the first member's filters

    def predict_proba(self, x, batch_size=1000):
        """The mean of the members' probabilities for x, a NumPy array."""
        return np.mean([_host(m.predict_proba(x, batch_size)) for m in self.members], axis=0)

    def predict(self, x, batch_size=1000):
        """The ensemble's labels for x (int64, NumPy): the plurality of the members' labels (ties to the
        smaller label), or with ``vote="mean"`` the argmax of the mean probabilities."""
        if self.vote == "mean":
            return self.predict_proba(x, batch_size).argmax(axis=1)
        votes = np.stack([_host(m.predict(x, batch_size)) for m in self.members], axis=1)
        n_classes = int(votes.max()) + 1
        counts = np.stack([(votes == k).sum(axis=1) for k in range(n_classes)], axis=1)
        return counts.argmax(axis=1)

    def evaluate(self, data, batch_size=1000):
        """Accuracy and zero-one error of the vote on ``data`` = (x, y) (no loss: a vote has none)."""
        x, y = data
        error = float((self.predict(x, batch_size) != y).mean())
        return {"accuracy": 1 - error, "error": error}
