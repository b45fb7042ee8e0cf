"""Tests for deepcart.eval.metrics: hand-computed cases, reference implementations, edge cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
from scipy import stats

from deepcart.errors import InputError
from deepcart.eval import metrics as M


def csr(rows: list[list[int]], n_items: int) -> sp.csr_array:
    """CSR truth with a 1 at each listed item of each row."""
    indptr = np.cumsum([0] + [len(r) for r in rows])
    indices = np.array([i for r in rows for i in r], dtype=np.int64)
    data = np.ones(indices.size)
    return sp.csr_array((data, indices, indptr), shape=(len(rows), n_items))


# Discounts 1 / log2(i + 1) for ranks i = 1..4.
D1, D2, D3, D4 = 1.0, 1 / math.log2(3), 1 / math.log2(4), 1 / math.log2(5)

# The hand-worked case: 5 users, 6 items, k = 4.
RECS = np.array(
    [
        [0, 1, 2, 3],  # u0, truth {1, 3, 5}: hits at ranks 2 and 4
        [4, 3, -1, -1],  # u1, truth {3}: hit at rank 2, two padding slots
        [1, 2, 3, 4],  # u2, truth {}: unscorable -> NaN
        [5, 0, 2, -1],  # u3, truth {0, 1, 2, 4, 5}: hits at ranks 1, 2, 3
        [2, -1, -1, -1],  # u4, truth {0}: no hit
    ]
)
TRUTH = csr([[1, 3, 5], [3], [], [0, 1, 2, 4, 5], [0]], 6)
HITS = np.array(
    [
        [False, True, False, True],
        [False, True, False, False],
        [False, False, False, False],
        [True, True, True, False],
        [False, False, False, False],
    ]
)
NAN = math.nan
EXPECTED = {
    # hits / k (k = 4 even for padded lists)
    "precision": [2 / 4, 1 / 4, NAN, 3 / 4, 0.0],
    # hits / |truth|
    "recall": [2 / 3, 1 / 1, NAN, 3 / 5, 0.0],
    "hit_rate": [1.0, 1.0, NAN, 1.0, 0.0],
    # 1 / rank of first hit
    "mrr": [1 / 2, 1 / 2, NAN, 1.0, 0.0],
    # u0: (P@2 + P@4) / min(3, 4) = (1/2 + 2/4) / 3; u1: P@2 / min(1, 4) = 1/2;
    # u3: (P@1 + P@2 + P@3) / min(5, 4) = 3 / 4
    "map": [(1 / 2 + 2 / 4) / 3, 1 / 2, NAN, 3 / 4, 0.0],
    # u0: (D2 + D4) / (D1 + D2 + D3); u1: D2 / D1; u3: (D1 + D2 + D3) / (D1 + D2 + D3 + D4)
    "ndcg": [
        (D2 + D4) / (D1 + D2 + D3),
        D2 / D1,
        NAN,
        (D1 + D2 + D3) / (D1 + D2 + D3 + D4),
        0.0,
    ],
}
FUNCS = {
    "precision": M.precision_at_k,
    "recall": M.recall_at_k,
    "hit_rate": M.hit_rate_at_k,
    "mrr": M.mrr_at_k,
    "map": M.average_precision_at_k,
    "ndcg": M.ndcg_at_k,
}


# ---------------------------------------------------------------------------------------------
# hit matrix and top-N metrics


def test_hit_matrix_hand_case():
    np.testing.assert_array_equal(M.hit_matrix(RECS, TRUTH), HITS)
    np.testing.assert_array_equal(M.hit_matrix(RECS, TRUTH, k=2), HITS[:, :2])
    np.testing.assert_array_equal(M.count_relevant(TRUTH), [3, 1, 0, 5, 1])


def test_hit_matrix_accepts_spmatrix_and_noncanonical_truth():
    # Row 0 stores item 3 twice and unsorted; only the pattern matters.
    t = sp.csr_matrix((np.array([2.0, 1.0, 0.5]), np.array([3, 1, 3]), np.array([0, 3])), (1, 5))
    assert not t.has_canonical_format
    before = t.indices.copy()
    np.testing.assert_array_equal(M.hit_matrix([[3, 1, 0]], t), [[True, True, False]])
    np.testing.assert_array_equal(M.count_relevant(t), [2])
    np.testing.assert_array_equal(t.indices, before)  # input not mutated


def test_padding_never_hits():
    # Key trick pitfall: -1 in row 1 would map onto row 0's last item (n_items - 1).
    truth = csr([[4], [0]], 5)
    recs = np.array([[4, -1], [-1, -1]])
    np.testing.assert_array_equal(M.hit_matrix(recs, truth), [[True, False], [False, False]])
    # Also with a truth matrix whose first row owns item n_items - 1 and an all-padding block.
    assert not M.hit_matrix(np.full((2, 3), -1), truth).any()


@pytest.mark.parametrize("name", list(FUNCS))
def test_topn_metrics_hand_values(name):
    n_rel = M.count_relevant(TRUTH)
    got = FUNCS[name](HITS, n_rel)
    np.testing.assert_allclose(got, EXPECTED[name], equal_nan=True)
    np.testing.assert_allclose(M.topn_metrics(RECS, TRUTH)[name], EXPECTED[name], equal_nan=True)


def test_k_truncates():
    n_rel = M.count_relevant(TRUTH)
    # u0 at k=2: hits [F, T]; P = 1/2, R = 1/3, AP = P@2 / min(3, 2) = 1/4,
    # nDCG = D2 / (D1 + D2).
    assert M.precision_at_k(HITS, n_rel, k=2)[0] == pytest.approx(1 / 2)
    assert M.recall_at_k(HITS, n_rel, k=2)[0] == pytest.approx(1 / 3)
    assert M.average_precision_at_k(HITS, n_rel, k=2)[0] == pytest.approx(1 / 4)
    assert M.ndcg_at_k(HITS, n_rel, k=2)[0] == pytest.approx(D2 / (D1 + D2))
    # u3 at k=1: first item is a hit.
    assert M.mrr_at_k(HITS, n_rel, k=1)[3] == 1.0
    truncated = M.topn_metrics(RECS, TRUTH, k=2)
    np.testing.assert_allclose(truncated["ndcg"], M.ndcg_at_k(HITS[:, :2], n_rel), equal_nan=True)


def test_perfect_list_scores_one():
    # 3 relevant items, k = 2, both recommended items relevant: AP and nDCG reach 1, recall 2/3.
    truth = csr([[0, 1, 2]], 4)
    m = M.topn_metrics(np.array([[2, 0]]), truth)
    assert m["map"][0] == pytest.approx(1.0)
    assert m["ndcg"][0] == pytest.approx(1.0)
    assert m["recall"][0] == pytest.approx(2 / 3)


def test_empty_truth_is_nan_and_counted_by_summarize():
    m = M.topn_metrics(RECS, TRUTH)
    for name, values in m.items():
        assert np.isnan(values[2]), name
        s = M.summarize(values)
        assert (s.n_scored, s.n_skipped) == (4, 1)
        assert s.mean == pytest.approx(np.nanmean(EXPECTED[name]))
    mean, n_scored, n_skipped = M.summarize(np.array([np.nan, np.nan]))
    assert math.isnan(mean) and (n_scored, n_skipped) == (0, 2)
    empty = M.summarize(np.array([]))
    assert math.isnan(empty.mean) and (empty.n_scored, empty.n_skipped) == (0, 0)


def test_ndcg_matches_sklearn():
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(1)
    n_users, n_items, k = 40, 30, 7
    recs = np.array([rng.permutation(n_items)[:k] for _ in range(n_users)])
    rows = [list(rng.choice(n_items, size=rng.integers(1, 12), replace=False)) for _ in recs]
    truth = csr(rows, n_items)
    ours = M.ndcg_at_k(M.hit_matrix(recs, truth), M.count_relevant(truth))
    y_true = truth.toarray() > 0
    for u in range(n_users):
        # Scores k, k-1, ..., 1 on the recommended items (in order), 0 elsewhere: the top-k
        # ranking of y_score is exactly recs[u].
        y_score = np.zeros(n_items)
        y_score[recs[u]] = np.arange(k, 0, -1)
        ref = sklearn_metrics.ndcg_score(y_true[u : u + 1], y_score[None, :], k=k)
        assert ours[u] == pytest.approx(ref), u


def test_hit_matrix_mid_size_matches_sparse_lookup():
    # 20k users x k=10 over 50k items: the dense users x items matrix would be 1e9 cells.
    rng = np.random.default_rng(2)
    n_users, n_items, k = 20_000, 50_000, 10
    nnz = 150_000
    truth = sp.csr_array(
        (np.ones(nnz), (rng.integers(0, n_users, nnz), rng.integers(0, n_items, nnz))),
        shape=(n_users, n_items),
    )
    truth.sum_duplicates()
    # Half of each list drawn from the user's truth (when any), half random, some padding.
    recs = rng.integers(0, n_items, size=(n_users, k))
    for u in range(0, n_users, 7):
        own = truth.indices[truth.indptr[u] : truth.indptr[u + 1]][: k // 2]
        recs[u, : own.size] = own
    recs[:, -1] = np.where(rng.random(n_users) < 0.3, -1, recs[:, -1])
    recs = np.array([_dedupe(r) for r in recs])
    hits = M.hit_matrix(recs, truth)
    rows = np.repeat(np.arange(n_users), k)
    cols = recs.ravel()
    valid = cols >= 0
    expected = np.zeros(n_users * k, dtype=bool)
    expected[valid] = np.asarray(truth[rows[valid], cols[valid]]).ravel() != 0
    np.testing.assert_array_equal(hits.ravel(), expected)
    assert hits.sum() > 1000


def _dedupe(row: np.ndarray) -> np.ndarray:
    """Replace repeated items of a row by -1 (keeping the first occurrence)."""
    out = row.copy()
    seen: set[int] = set()
    for i, item in enumerate(row):
        if item in seen:
            out[i] = -1
        seen.add(int(item))
    return out


def test_validation_messages():
    with pytest.raises(ValueError, match="recs has 3 rows but truth has 4"):
        M.hit_matrix(np.full((3, 2), -1), sp.csr_array((4, 5)))
    with pytest.raises(ValueError, match="recs: item index 5 is out of range"):
        M.hit_matrix(np.array([[5]]), sp.csr_array((1, 5)))
    with pytest.raises(ValueError, match="recs: .*-1"):
        M.hit_matrix(np.array([[-2]]), sp.csr_array((1, 5)))
    with pytest.raises(ValueError, match="recs: row 1 recommends the same item twice"):
        M.hit_matrix(np.array([[0, 1], [2, 2]]), sp.csr_array((2, 5)))
    with pytest.raises(ValueError, match="recs: expected integer"):
        M.hit_matrix(np.array([[0.0]]), sp.csr_array((1, 5)))
    with pytest.raises(ValueError, match="truth: expected a scipy.sparse"):
        M.hit_matrix(np.array([[0]]), np.ones((1, 5)))
    with pytest.raises(ValueError, match="k: expected 1 <= k <= 4"):
        M.hit_matrix(RECS, TRUTH, k=5)
    with pytest.raises(ValueError, match="hits: expected a boolean"):
        M.ndcg_at_k(HITS.astype(int), M.count_relevant(TRUTH))
    with pytest.raises(ValueError, match="hits has 5 rows but n_relevant has 4"):
        M.recall_at_k(HITS, np.array([1, 1, 1, 1]))
    with pytest.raises(ValueError, match="hits: row 0 has more hits than n_relevant"):
        M.recall_at_k(HITS, np.array([1, 1, 0, 5, 1]))
    # Errors are both ValueError and DeepCart's InputError.
    with pytest.raises(InputError):
        M.precision_at_k(HITS, M.count_relevant(TRUTH), k=0)


# ---------------------------------------------------------------------------------------------
# coverage, popularity, novelty


def test_item_counts_and_catalog_coverage():
    recs = np.array([[0, 1, -1], [1, 3, -1]])
    np.testing.assert_array_equal(M.item_counts(recs, 5), [1, 2, 0, 1, 0])
    # Items {0, 1, 3} of 5.
    assert M.catalog_coverage(recs, 5) == pytest.approx(3 / 5)
    # k=1: items {0, 1} of 5.
    assert M.catalog_coverage(recs, 5, k=1) == pytest.approx(2 / 5)
    assert M.catalog_coverage(np.full((2, 3), -1), 5) == 0.0
    with pytest.raises(ValueError, match="n_items"):
        M.catalog_coverage(recs, 0)


POP = np.array([10, 5, 0, 2, 1, 8])


def test_mean_popularity():
    recs = np.array([[0, 1, 2, 3], [4, 3, -1, -1], [-1, -1, -1, -1]])
    # (10 + 5 + 0 + 2) / 4; (1 + 2) / 2; all padding -> NaN
    np.testing.assert_allclose(M.mean_popularity(recs, POP), [17 / 4, 3 / 2, NAN], equal_nan=True)
    with pytest.raises(ValueError, match="item_popularity"):
        M.mean_popularity(recs, -POP)


def test_novelty():
    recs = np.array([[0, 1, 2, 3], [4, 3, -1, -1], [-1, -1, -1, -1]])
    # n_users_train = 10. u0: items with pop 10 (0 bits), 5 (1 bit), 0 (counted as 1:
    # log2 10 bits), 2 (log2 5 bits). u1: pop 1 (log2 10) and 2 (log2 5).
    expected = [
        (0 + 1 + math.log2(10) + math.log2(5)) / 4,
        (math.log2(10) + math.log2(5)) / 2,
        NAN,
    ]
    np.testing.assert_allclose(M.novelty(recs, POP, 10), expected, equal_nan=True)
    with pytest.raises(ValueError, match="exceeds n_users_train"):
        M.novelty(recs, POP, 9)
    with pytest.raises(ValueError, match="n_users_train"):
        M.novelty(recs, POP, 0)


# ---------------------------------------------------------------------------------------------
# rating prediction


def test_rating_metrics_hand_values():
    pred = np.array([3.0, np.nan, 4.0, 1.0])
    true = np.array([4.0, 5.0, 4.0, 3.0])
    # NaN prediction dropped; errors -1, 0, -2.
    assert M.rmse(pred, true) == pytest.approx(math.sqrt(5 / 3))
    assert M.mae(pred, true) == pytest.approx(1.0)
    # p = [3, 4, 1], t = [4, 4, 3]; dp = [1, 4, -5] / 3, dt = [1, 1, -2] / 3;
    # r = (1 + 4 + 10) / sqrt((1 + 16 + 25)(1 + 1 + 4)) = 15 / sqrt(252)
    assert M.pearson_r(pred, true) == pytest.approx(15 / math.sqrt(252))
    assert M.pearson_r(pred, true) == pytest.approx(stats.pearsonr([3, 4, 1], [4, 4, 3])[0])


def test_rating_metrics_edge_cases():
    assert math.isnan(M.rmse([np.nan], [3.0]))
    assert math.isnan(M.mae([], []))
    assert math.isnan(M.pearson_r([1.0], [2.0]))  # fewer than 2 points
    assert math.isnan(M.pearson_r([3.5, 3.5, 3.5], [1.0, 2.0, 5.0]))  # constant prediction
    assert M.pearson_r([1.0, 2.0, np.nan], [1.0, 2.0, 3.0]) == pytest.approx(1.0)  # 2 points left
    with pytest.raises(ValueError, match="pred has shape"):
        M.rmse([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="true: contains NaN"):
        M.mae([1.0], [np.nan])


# ---------------------------------------------------------------------------------------------
# AUC


def test_auc_hand_case():
    scores = np.array([[0.9, 0.5, 0.5, 0.1, 0.7]])
    truth = csr([[1, 3]], 5)
    # Positives 1 (0.5), 3 (0.1); negatives 0 (0.9), 2 (0.5), 4 (0.7).
    # Only (1, 2) is a tie (1/2); every other pair is mis-ordered: AUC = 0.5 / 6.
    assert M.auc_per_user(scores, truth)[0] == pytest.approx(0.5 / 6)
    # Excluding item 4 (seen): 0.5 / 4.
    exclude = csr([[4]], 5)
    assert M.auc_per_user(scores, truth, exclude=exclude)[0] == pytest.approx(0.5 / 4)
    # Candidates {1, 2, 3}: pairs (1, 2) tie, (3, 2) wrong: 0.5 / 2.
    mask = np.array([False, True, True, True, False])
    assert M.auc_per_user(scores, truth, candidates_mask=mask)[0] == pytest.approx(0.25)


def test_auc_nan_for_users_without_positives_or_negatives():
    scores = np.array([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0], [1.0, 2.0, 3.0]])
    truth = csr([[], [0, 1, 2], [0, 1]], 3)
    exclude = csr([[], [], [2]], 3)
    got = M.auc_per_user(scores, truth, exclude=exclude)
    assert np.isnan(got).all()


def _auc_brute(scores, relevant, eligible):
    out = []
    for s, rel, el in zip(scores, relevant, eligible, strict=True):
        pos = s[rel & el]
        neg = s[~rel & el]
        if pos.size == 0 or neg.size == 0:
            out.append(np.nan)
            continue
        total = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
        out.append(total / (pos.size * neg.size))
    return np.array(out)


@pytest.mark.parametrize("with_neg_inf", [False, True])
def test_auc_matches_brute_force_with_ties(with_neg_inf):
    rng = np.random.default_rng(3)
    n_users, n_items = 25, 20
    scores = rng.integers(0, 5, size=(n_users, n_items)).astype(np.float64)  # many ties
    if with_neg_inf:
        scores[rng.random(scores.shape) < 0.1] = -np.inf
    truth = sp.csr_array(rng.random((n_users, n_items)) < 0.2)
    exclude = sp.csr_array(rng.random((n_users, n_items)) < 0.2)
    mask = rng.random(n_items) < 0.9
    relevant = truth.toarray()
    eligible = ~exclude.toarray() & mask
    got = M.auc_per_user(scores, truth, exclude=exclude, candidates_mask=mask)
    np.testing.assert_allclose(got, _auc_brute(scores, relevant, eligible), equal_nan=True)
    got = M.auc_per_user(scores, truth)
    ref = _auc_brute(scores, relevant, np.ones_like(relevant))
    np.testing.assert_allclose(got, ref, equal_nan=True)


def test_auc_validation():
    with pytest.raises(ValueError, match="truth has shape"):
        M.auc_per_user(np.zeros((2, 3)), sp.csr_array((2, 4)))
    with pytest.raises(ValueError, match="scores: contains NaN"):
        M.auc_per_user(np.array([[np.nan, 1.0]]), sp.csr_array((1, 2)))
    with pytest.raises(ValueError, match="candidates_mask"):
        M.auc_per_user(np.zeros((1, 3)), sp.csr_array((1, 3)), candidates_mask=np.ones(4, bool))


# ---------------------------------------------------------------------------------------------
# bootstrap and paired tests


def test_bootstrap_ci():
    rng = np.random.default_rng(4)
    values = rng.random(500)
    values[::10] = np.nan
    low, high = M.bootstrap_ci(values, n_boot=500)
    mean = np.nanmean(values)
    assert low < mean < high
    # Normal approximation: half-width ~ 1.96 * sd / sqrt(n).
    half = 1.96 * np.nanstd(values) / math.sqrt(450)
    assert high - low == pytest.approx(2 * half, rel=0.2)
    assert M.bootstrap_ci(values, n_boot=500) == (low, high)  # deterministic for a seed
    assert M.bootstrap_ci(np.full(7, 0.25)) == (0.25, 0.25)
    lo, hi = M.bootstrap_ci(np.array([np.nan]))
    assert math.isnan(lo) and math.isnan(hi)
    with pytest.raises(ValueError, match="alpha"):
        M.bootstrap_ci(values, alpha=1.5)
    with pytest.raises(ValueError, match="n_boot"):
        M.bootstrap_ci(values, n_boot=0)


def test_bootstrap_ci_chunked(monkeypatch):
    # Chunks of 3 replicates (1500 indices / 500 users) cover all n_boot replicates.
    values = np.random.default_rng(5).random(500)
    monkeypatch.setattr(M, "_BOOT_CHUNK_ELEMENTS", 1500)
    low, high = M.bootstrap_ci(values, n_boot=301)
    assert low < values.mean() < high


def test_paired_test():
    rng = np.random.default_rng(6)
    a = rng.random(200)
    b = a - 0.05 + 0.1 * rng.standard_normal(200)
    a_nan, b_nan = a.copy(), b.copy()
    a_nan[0] = np.nan
    b_nan[1] = np.nan
    p = M.paired_test(a_nan, b_nan)
    assert p == pytest.approx(stats.ttest_rel(a[2:], b[2:]).pvalue)
    assert p < 0.01
    pw = M.paired_test(a_nan, b_nan, method="wilcoxon")
    assert pw == pytest.approx(stats.wilcoxon(a[2:] - b[2:]).pvalue)
    assert M.paired_test(a, a) == 1.0
    assert M.paired_test(a, a, method="wilcoxon") == 1.0
    assert M.paired_test(a, a + 0.1) == 0.0  # constant nonzero difference
    assert math.isnan(M.paired_test(np.array([1.0, np.nan]), np.array([np.nan, 2.0])))
    with pytest.raises(ValueError, match="a has 3 users but b has 2"):
        M.paired_test(np.ones(3), np.ones(2))
    with pytest.raises(ValueError, match="method"):
        M.paired_test(a, b, method="sign")


# ---------------------------------------------------------------------------------------------
# top-k


def _top_k_reference(scores, k, excluded):
    """Full sort by (-score, index), dropping excluded and -inf items, padded with -1."""
    idx_out = np.full((scores.shape[0], k), -1)
    val_out = np.full((scores.shape[0], k), -np.inf)
    for u, s in enumerate(scores):
        order = np.lexsort((np.arange(s.size), -s))
        order = [i for i in order if not excluded[u, i] and s[i] != -np.inf][:k]
        idx_out[u, : len(order)] = order
        val_out[u, : len(order)] = s[order]
    return idx_out, val_out


def test_top_k_hand_case():
    scores = np.array([[1.0, 3.0, 3.0, 2.0, 3.0]])
    idx, val = M.top_k(scores, 2)
    np.testing.assert_array_equal(idx, [[1, 2]])  # three-way tie at 3: lowest indices first
    np.testing.assert_array_equal(val, [[3.0, 3.0]])
    idx, _ = M.top_k(scores, 2, exclude=csr([[2]], 5))
    np.testing.assert_array_equal(idx, [[1, 4]])
    # Only 2 items left after excluding 3: padded with -1 / -inf.
    idx, val = M.top_k(scores, 4, exclude=csr([[1, 2, 4]], 5))
    np.testing.assert_array_equal(idx, [[3, 0, -1, -1]])
    np.testing.assert_array_equal(val, [[2.0, 1.0, -np.inf, -np.inf]])


@pytest.mark.parametrize("k", [1, 3, 10, 19, 20, 25])
def test_top_k_matches_full_sort(k):
    rng = np.random.default_rng(7 + k)
    n_users, n_items = 30, 20
    scores = rng.integers(0, 4, size=(n_users, n_items)).astype(np.float32)  # many ties
    scores[rng.random(scores.shape) < 0.05] = -np.inf
    excluded = rng.random((n_users, n_items)) < 0.3
    excluded[0] = True  # a user with nothing left
    idx, val = M.top_k(scores, k, exclude=sp.csr_array(excluded))
    ref_idx, ref_val = _top_k_reference(scores, k, excluded)
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_array_equal(val, ref_val)
    for u in range(n_users):  # one row at a time (its own selection path)
        iu, vu = M.top_k(scores[u : u + 1], k, exclude=sp.csr_array(excluded[u : u + 1]))
        np.testing.assert_array_equal(iu, ref_idx[u : u + 1])
        np.testing.assert_array_equal(vu, ref_val[u : u + 1])
    assert idx.dtype == np.int64 and val.dtype == np.float32 and idx.shape == (n_users, k)
    # Without exclusion, on continuous scores.
    cont = rng.standard_normal((n_users, n_items))
    idx, val = M.top_k(cont, k)
    ref_idx, ref_val = _top_k_reference(cont, k, np.zeros_like(excluded))
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_array_equal(val, ref_val)


def test_top_k_output_feeds_hit_matrix():
    scores = np.array([[0.1, 0.9, 0.5], [0.3, 0.2, 0.1]])
    idx, _ = M.top_k(scores, 2, exclude=csr([[1], [0, 1, 2]], 3))
    np.testing.assert_array_equal(idx, [[2, 0], [-1, -1]])
    hits = M.hit_matrix(idx, csr([[0], [2]], 3))
    np.testing.assert_array_equal(hits, [[False, True], [False, False]])


def test_top_k_validation():
    with pytest.raises(ValueError, match="k: expected a positive integer"):
        M.top_k(np.zeros((1, 3)), 0)
    with pytest.raises(ValueError, match="scores: contains NaN"):
        M.top_k(np.array([[np.nan, 1.0]]), 1)
    with pytest.raises(ValueError, match="exclude has shape"):
        M.top_k(np.zeros((2, 3)), 1, exclude=sp.csr_array((2, 4)))
