"""Fine-tuning baselines: what a residual is compared against, changing the learned base's
own weights instead of adding a correction.

- :mod:`.config`: the ``method: dagger | rl`` configs under ``baselines/`` and
  :mod:`.train`: :func:`~.train.train_finetune`, the entry point ``bench train`` calls;
- :mod:`.dagger`: ``finetune-dagger``, the expert relabels the states the base visits (the
  labels: :mod:`.dagger_labels`);
- :mod:`.rl`: ``finetune-rl`` / ``finetune-rl-ppo``, SAC or PPO trains the network end to end;
  ``finetune-rl-bc``, SAC with the actor held near the base (TD3+BC's term); the env they
  act in, one decision per action chunk: :mod:`.chunked_env`.

They compete with the residual, they are not bases: the bases live in
:mod:`residual_bench.policies`.
"""
