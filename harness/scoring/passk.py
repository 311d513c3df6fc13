"""The unbiased pass@k estimator."""

from __future__ import annotations


def pass_at_k(n: int, c: int, k: int) -> float:
    """Probability that at least one of k samples drawn from n (c of them correct) passes.

    Chen et al. 2021, "Evaluating Large Language Models Trained on Code" (arXiv:2107.03374), sec. 2.1:
    pass@k = E[1 - C(n-c, k) / C(n, k)]. The ratio of binomials is evaluated as the product
    prod_{i=n-c+1}^{n} (1 - k/i), which avoids the huge integers of C(n, k) (the paper's fig. 3).
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if n < k:
        raise ValueError(f"pass@{k} needs at least {k} samples, got n={n}")
    if not 0 <= c <= n:
        raise ValueError(f"c must be in [0, n={n}], got {c}")
    if n - c < k:  # every draw of k contains a correct sample
        return 1.0
    all_fail = 1.0
    for i in range(n - c + 1, n + 1):
        all_fail *= 1.0 - k / i
    return 1.0 - all_fail
