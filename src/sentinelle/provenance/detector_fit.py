"""Fit a regularised logistic head on image embeddings, with honest cross-validation.

Pure numpy, deterministic for a given input order and seed::

    fit = fit_head(X, y, seed=0)       # X: [n, d] embeddings, y: 1 = AI-made, 0 = real
    fit.weights, fit.bias, fit.threshold
    fit.cv_auc                         # out-of-fold AUC at the chosen penalty
    fit.table                          # [{"target_fpr", "threshold", "fpr", "recall"}, ...]

How:

* features are standardised on the training rows; the L2 penalty ``lam`` is chosen from
  :data:`PENALTIES` by stratified k-fold cross-validation (k = 5, fewer when a class has
  fewer than 5 images), best out-of-fold AUC, ties to the stronger penalty;
* the model is fitted by Newton's method (IRLS) on the penalised log-loss (the bias is not
  penalised; with fewer images than features, in the row space, see :func:`fit_path`),
  then refitted on every row; weights are mapped back to raw features;
* the threshold is picked on the out-of-fold scores of the real images so that at most
  ``max_fpr`` of them score at or above it; the table gives, per target false-positive
  rate, the out-of-fold threshold, the false-positive rate reached and the recall.

The out-of-fold figures choose the penalty on the same folds they report, so they are a
little optimistic; with few images the false-positive rate cannot be resolved below
``1 / n_real`` (the table says so).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import ProvenanceError

PENALTIES = (0.01, 0.1, 1.0, 10.0, 100.0)
TARGET_FPRS = (0.001, 0.005, 0.01, 0.05, 0.1)
MIN_PER_CLASS = 4


class FitError(ProvenanceError):
    """Too few images, one class only, or non-finite features."""

    code = "bad_training_set"


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(z, dtype=np.float64)))


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U with ties counted half)."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels).astype(bool)
    pos, neg = s[y], s[~y]
    if not len(pos) or not len(neg):
        raise FitError("AUC needs both classes")
    order = np.argsort(np.concatenate([pos, neg]), kind="mergesort")
    allv = np.concatenate([pos, neg])[order]
    ranks = np.empty(len(allv))
    i = 0
    while i < len(allv):  # average ranks over ties
        j = i
        while j + 1 < len(allv) and allv[j + 1] == allv[i]:
            j += 1
        ranks[i : j + 1] = (i + j) / 2.0 + 1.0
        i = j + 1
    r = np.empty(len(allv))
    r[order] = ranks
    u = r[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2.0
    return float(u / (len(pos) * len(neg)))


def fit_logistic(
    X: np.ndarray,
    y: np.ndarray,
    lam: float,
    max_iter: int = 100,
    tol: float = 1e-9,
    start: np.ndarray | None = None,
) -> tuple[np.ndarray, float]:
    """Minimise ``sum(logloss) + lam/2 * |w|^2`` by Newton's method; returns (w, b).

    ``start`` is an initial ``[w..., b]`` (warm start along a penalty path).
    """
    n, d = X.shape
    A = np.hstack([X, np.ones((n, 1))])
    theta = np.zeros(d + 1) if start is None else np.array(start, dtype=np.float64)
    reg = np.full(d + 1, float(lam))
    reg[-1] = 1e-9  # the bias is (almost) unpenalised
    yf = y.astype(np.float64)
    for _ in range(max_iter):
        p = sigmoid(A @ theta)
        grad = A.T @ (p - yf) + reg * theta
        wts = p * (1.0 - p)
        H = (A * wts[:, None]).T @ A + np.diag(reg)
        step = np.linalg.solve(H, grad)
        theta -= step
        if float(np.max(np.abs(step))) < tol:
            break
    return theta[:d], float(theta[d])


@dataclass
class _Scaler:
    mean: np.ndarray
    scale: np.ndarray

    @classmethod
    def fit(cls, X: np.ndarray) -> _Scaler:
        sd = X.std(axis=0)
        return cls(X.mean(axis=0), np.where(sd > 1e-12, sd, 1.0))

    def apply(self, X: np.ndarray) -> np.ndarray:
        return (X - self.mean) / self.scale

    def to_raw(self, w: np.ndarray, b: float) -> tuple[np.ndarray, float]:
        wr = w / self.scale
        return wr, float(b - np.dot(wr, self.mean))


def fit_path(
    X: np.ndarray, y: np.ndarray, lams: tuple[float, ...]
) -> dict[float, tuple[np.ndarray, float]]:
    """(w, b) on raw features for each penalty, features standardised on ``X``.

    The penalised solution lies in the row space of the standardised features
    (``w = -Xs.T @ (p - y) / lam``), so with fewer rows than features the fit runs on the
    ``n x r`` coordinates ``U S`` of a thin SVD and maps back with ``V``: the same optimum,
    at a fraction of the cost. Penalties are walked from strongest to weakest, each fit
    warm-started from the previous one.
    """
    sc = _Scaler.fit(X)
    Xs = sc.apply(X)
    basis: np.ndarray | None = None
    if Xs.shape[0] < Xs.shape[1]:
        u, sv, vt = np.linalg.svd(Xs, full_matrices=False)
        keep = sv > sv[0] * 1e-10
        Xs, basis = u[:, keep] * sv[keep], vt[keep]
    out: dict[float, tuple[np.ndarray, float]] = {}
    start = None
    for lam in sorted(lams, reverse=True):
        c, b = fit_logistic(Xs, y, lam, start=start)
        start = np.append(c, b)
        w = basis.T @ c if basis is not None else c
        out[lam] = sc.to_raw(w, b)
    return out


def stratified_folds(y: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Fold index per row: each class shuffled with ``seed`` and dealt round-robin."""
    rng = np.random.default_rng(seed)
    fold = np.empty(len(y), dtype=np.int64)
    for cls in (0, 1):
        idx = np.flatnonzero(y == cls)
        idx = idx[rng.permutation(len(idx))]
        fold[idx] = np.arange(len(idx)) % k
    return fold


def out_of_fold(
    X: np.ndarray, y: np.ndarray, lams: tuple[float, ...], folds: np.ndarray
) -> dict[float, np.ndarray]:
    """Per penalty, the probability of each row from the model fitted without its fold."""
    scores = {lam: np.empty(len(y)) for lam in lams}
    for f in np.unique(folds):
        test = folds == f
        for lam, (w, b) in fit_path(X[~test], y[~test], lams).items():
            scores[lam][test] = sigmoid(X[test] @ w + b)
    return scores


def threshold_at(
    real_scores: np.ndarray, max_fpr: float, ai_scores: np.ndarray | None = None
) -> float:
    """A threshold at which at most ``max_fpr`` of the real scores are >= it.

    Without ``ai_scores``: the lowest such threshold. With them: the middle (in logit space)
    of the gap between the first real score not allowed and the lowest AI score above it,
    so the out-of-fold false-positive rate and recall are the same as at the lowest
    threshold, but a new real image scoring a little above every training one is not
    flagged: the refitted head's scores never fall exactly where the out-of-fold ones did.
    """
    s = np.sort(np.asarray(real_scores, dtype=np.float64))[::-1]
    allowed = int(np.floor(max_fpr * len(s) + 1e-9))  # real images allowed at or above
    if allowed >= len(s):
        t = float(np.nextafter(s[-1], -np.inf))
    else:
        t = float(np.nextafter(s[allowed], np.inf))  # just above the first real not allowed
        above = np.asarray(ai_scores if ai_scores is not None else [], dtype=np.float64)
        above = above[above > s[allowed]]
        if len(above):
            lo, hi = (min(max(v, 1e-9), 1.0 - 1e-9) for v in (s[allowed], float(above.min())))
            mid = 0.5 * (np.log(lo / (1 - lo)) + np.log(hi / (1 - hi)))
            t = max(t, float(sigmoid(np.array(mid))))
    return min(max(t, 1e-6), 1.0 - 1e-6)


def rates(scores: np.ndarray, y: np.ndarray, threshold: float) -> tuple[float, float]:
    """(false-positive rate, recall) when ``score >= threshold`` means synthetic."""
    flagged = scores >= threshold
    return float(flagged[y == 0].mean()), float(flagged[y == 1].mean())


@dataclass
class HeadFit:
    weights: np.ndarray
    bias: float
    threshold: float
    lam: float
    cv_auc: float
    cv_folds: int
    auc_by_penalty: dict[float, float]
    table: list[dict[str, float]]
    n_real: int
    n_ai: int
    max_fpr: float
    oof_scores: np.ndarray = field(repr=False)

    def training_summary(self) -> dict[str, Any]:
        return {
            "n_real": self.n_real,
            "n_ai": self.n_ai,
            "cv_folds": self.cv_folds,
            "cv_auc": round(self.cv_auc, 4),
            "l2_penalty": self.lam,
            "auc_by_penalty": {str(k): round(v, 4) for k, v in self.auc_by_penalty.items()},
            "max_fpr": self.max_fpr,
            "fpr_resolution": round(1.0 / self.n_real, 4),
            "table": self.table,
            "note": "out-of-fold figures on the operator's own images; the penalty was "
            "chosen on the same folds (slightly optimistic)",
        }


def fit_head(
    X: np.ndarray, y: np.ndarray, *, max_fpr: float = 0.01, seed: int = 0, folds: int = 5
) -> HeadFit:
    """Choose the penalty by cross-validation, refit on everything, pick the threshold."""
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y).astype(np.int64)
    if X.ndim != 2 or len(X) != len(y):
        raise FitError("features must be [n, d] with one label per row")
    if not np.all(np.isfinite(X)):
        raise FitError("features contain non-finite values")
    n_real, n_ai = int((y == 0).sum()), int((y == 1).sum())
    if min(n_real, n_ai) < MIN_PER_CLASS:
        raise FitError(
            f"need at least {MIN_PER_CLASS} images of each class (got {n_real} real, "
            f"{n_ai} AI-made)"
        )
    if not 0.0 < max_fpr < 1.0:
        raise FitError("max_fpr must be between 0 and 1")
    k = max(2, min(folds, n_real, n_ai))
    fold = stratified_folds(y, k, seed)
    oof = out_of_fold(X, y, PENALTIES, fold)
    by_lam = {lam: auc(oof[lam], y) for lam in PENALTIES}
    best = max(PENALTIES, key=lambda lam: (round(by_lam[lam], 6), lam))
    scores = oof[best]
    threshold = threshold_at(scores[y == 0], max_fpr, scores[y == 1])
    table = []
    for target in TARGET_FPRS:
        t = threshold_at(scores[y == 0], target, scores[y == 1])
        fpr, rec = rates(scores, y, t)
        table.append(
            {
                "target_fpr": target,
                "threshold": t,  # unrounded: rounding down lets one more real image through
                "fpr": round(fpr, 4),
                "recall": round(rec, 4),
            }  # fmt: skip
        )
    w, b = fit_path(X, y, (best,))[best]
    return HeadFit(
        weights=w,
        bias=b,
        threshold=threshold,
        lam=best,
        cv_auc=by_lam[best],
        cv_folds=k,
        auc_by_penalty=by_lam,
        table=table,
        n_real=n_real,
        n_ai=n_ai,
        max_fpr=max_fpr,
        oof_scores=scores,
    )
