"""Sweeps: a declarative grid of training runs, each followed by its evaluation, scheduled
on Ray (``bench sweep``; see ``docs/sweeps.md``).

- :mod:`.spec`: the sweep file and its cells;
- :mod:`.cell`: one cell, trained and evaluated, resumable;
- :mod:`.schedule`: the cells on Ray or in this process;
- :mod:`.collect`: the table of every cell and the report.
"""
