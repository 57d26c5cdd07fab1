"""The learned ``bc`` base: its network and checkpoints (:mod:`.model`), its demonstrations
(:mod:`.data`) and its training (:mod:`.train`), together.

The base itself is registered as ``bc`` (the shipped weights) and ``bc:PATH``; the baselines
that change its weights (DAgger and RL fine-tuning) live in :mod:`residual_bench.finetune`.
"""
