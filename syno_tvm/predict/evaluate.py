"""How well a score orders operators by measured latency, and held-out splits by operator.

Every metric is computed within one layer binding (operators compared at the same layer, as the search compares
them) and averaged over bindings.  Splits are by operator, never by sample: an operator seen at one binding in
training would leak its kernel's quality into the held-out rows of the others.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class Ranking:
    """Mean over bindings of Spearman rho, Kendall tau and top-10 % recall (the share of the truly fastest 10 %
    that the score also puts in its fastest 10 %); ``rows`` scored."""

    spearman: float
    kendall: float
    top10_recall: float
    rows: int

    def to_json(self) -> dict:
        return asdict(self)


def top_recall(truth: np.ndarray, score: np.ndarray, fraction: float = 0.1) -> float:
    k = max(1, int(round(fraction * len(truth))))
    best = set(np.argsort(truth, kind="stable")[:k])
    return len(best & set(np.argsort(score, kind="stable")[:k])) / k


def ranking(truth: np.ndarray, score: np.ndarray, group: np.ndarray) -> Ranking:
    """``truth`` and ``score``: lower is faster."""
    from scipy.stats import kendalltau, spearmanr

    rhos, taus, recalls = [], [], []
    for g in np.unique(group):
        m = group == g
        if m.sum() < 3:
            continue
        rhos.append(spearmanr(truth[m], score[m]).statistic)
        taus.append(kendalltau(truth[m], score[m]).statistic)
        recalls.append(top_recall(truth[m], score[m]))
    return Ranking(float(np.nanmean(rhos)), float(np.nanmean(taus)), float(np.mean(recalls)), int(len(truth)))


def operator_folds(ops: np.ndarray, k: int = 5, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """``k`` (train, test) row-index splits with every operator's rows on one side."""
    from sklearn.model_selection import GroupKFold

    rng = np.random.default_rng(seed)
    unique = np.unique(ops)
    relabel = dict(zip(unique, rng.permutation(len(unique))))  # GroupKFold is deterministic: shuffle the groups
    groups = np.array([relabel[o] for o in ops])
    return list(GroupKFold(n_splits=k).split(np.zeros(len(ops)), groups=groups))


def diverse_sample(X: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """``n`` row indices spread over feature space (k-means++ seeding on standardized features): the few target
    measurements of a transfer cover the space instead of clustering (HELP and NASFLAT sample for diversity too)."""
    from sklearn.cluster import kmeans_plusplus

    Z = (X - X.mean(0)) / (X.std(0) + 1e-9)
    _, idx = kmeans_plusplus(Z, n_clusters=min(n, len(X)), random_state=seed)
    return np.asarray(idx)
