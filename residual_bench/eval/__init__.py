"""Evaluation at scale and its report: the episode grid and its executors
(:mod:`~residual_bench.eval.runner`), the report, its plots and filmstrips.

The records, the loop that writes them and the metrics computed from them sit a layer
below, in :mod:`residual_bench.episodes`, so that training and fine-tuning can use them.
"""
