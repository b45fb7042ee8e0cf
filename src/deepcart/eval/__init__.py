"""Evaluation: pure metric functions (:mod:`deepcart.eval.metrics`) and the evaluator that runs
models on a split and tabulates per-user scores, summaries, confidence intervals and paired tests.
"""
