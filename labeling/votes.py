"""Vote arithmetic, no database: pair votes from K-wise rankings, the majority per pair (a
reviewer's final ranking overriding it), and the agreement figures over pairs."""
from __future__ import annotations

import itertools
from collections import defaultdict


def pair_votes(rankings):
    """{(a, b): [votes_a, votes_b, votes_tie]} over K-wise rankings (a < b), C(K,2) each."""
    votes = defaultdict(lambda: [0, 0, 0])
    for ranking in rankings:
        rank = {cid: i for i, tier in enumerate(ranking) for cid in tier}
        for a, b in itertools.combinations(sorted(rank), 2):
            if rank[a] < rank[b]:
                votes[(a, b)][0] += 1
            elif rank[b] < rank[a]:
                votes[(a, b)][1] += 1
            else:
                votes[(a, b)][2] += 1
    return votes


def majority(votes_a, votes_b, votes_tie):
    """(winner, agreement, margin): winner is 'a', 'b' or 'tie' (a draw between a and b is a
    tie); agreement is the share of annotators in the largest group."""
    n = votes_a + votes_b + votes_tie
    if votes_a > votes_b and votes_a > votes_tie:
        winner = "a"
    elif votes_b > votes_a and votes_b > votes_tie:
        winner = "b"
    else:
        winner = "tie"
    agreement = max(votes_a, votes_b, votes_tie) / n if n else 0.0
    margin = 0.0 if winner == "tie" else abs(votes_a - votes_b) / n
    return winner, agreement, margin


def task_pair_rows(task, rankings, now):
    """The rows of a task's pairs (sql.PAIR_FIELDS' values) aggregated over these rankings."""
    split = task.prompt.split
    # A reviewer's final ranking decides each pair's winner; the votes stay the annotators'.
    final = {cid: i for i, tier in enumerate(task.adjudicated_ranking or []) for cid in tier}
    rows = []
    for (a, b), (va, vb, vt) in pair_votes(rankings).items():
        winner, agreement, margin = majority(va, vb, vt)
        if a in final and b in final:
            winner = "a" if final[a] < final[b] else "b" if final[b] < final[a] else "tie"
            n = va + vb + vt
            agreement = ({"a": va, "b": vb, "tie": vt}[winner] / n) if n else 1.0
            margin = 0.0 if winner == "tie" else (abs(va - vb) / n if n else 1.0)
        chosen, rejected = (b, a) if winner == "b" else (a, b)
        rows.append((task.project_id, task.prompt_id, task.pk, a, b, chosen, rejected, va, vb, vt, winner == "tie",
                     agreement, margin, task.is_gold, split, task.round_number, now))
    return rows


def agreement(counts) -> dict:
    """Pairwise agreement (the share of annotator pairs that agree on a candidate pair) and
    Krippendorff's alpha (nominal: a better / b better / tie) over (votes_a, votes_b, votes_tie)
    rows of pairs with 2+ votes."""
    import krippendorff
    import numpy as np

    if not counts:
        return {"pairs": 0, "pairwise_agreement": None, "krippendorff_alpha": None}
    agree = total = 0
    for row in counts:
        n = sum(row)
        agree += sum(c * (c - 1) // 2 for c in row)
        total += n * (n - 1) // 2
    alpha = None
    matrix = np.array(counts, dtype=float)
    if (matrix.sum(axis=0) > 0).sum() >= 2:  # alpha is undefined when everyone used one value
        alpha = float(krippendorff.alpha(value_counts=matrix, level_of_measurement="nominal"))
    return {"pairs": len(counts), "pairwise_agreement": agree / total if total else None, "krippendorff_alpha": alpha}
