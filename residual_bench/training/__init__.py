"""What every trainer shares, below the residual agents and the fine-tuning baselines: the
learning curve a run writes (:mod:`.learning_curve`) with its fixed evaluation episodes, and
the off-policy safeguards (:mod:`.safeguards`)."""
