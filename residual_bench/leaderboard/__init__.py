"""The leaderboard: submissions, their validation and verification, and the generated tables.

- :mod:`.submission`: the submission layout, content hashes and ``bench submit``;
- :mod:`.validate`: the rules of ``bench leaderboard check``;
- :mod:`.schema`: the fields, types and bounded values of ``submission.json``;
- :mod:`.verify`: ``bench verify`` (re-run episodes, private held-out seeds);
- :mod:`.boards`: who is ranked against whom, on which episodes, and by which rule;
- :mod:`.summary`: the all-task summary (one row per method, one column per task);
- :mod:`.render`: ``leaderboards/README.md`` and ``index.html``;
- :mod:`.files`: bounded, contained reads of a submission's files;
- :mod:`.draw`: the nonce draw of ``bench verify`` and its audit;
- :mod:`.layout`: the layout's names and limits;
- :mod:`.cli`: :func:`~.cli.add_leaderboard_parsers` for the ``bench`` command line.

Rules and workflow: ``docs/leaderboard.md``.
"""
