"""The chaos runner: dbqueue's claim "never lost, twice only when a process died", measured.

``python -m chaos`` migrates a throwaway database (``dbqueue_chaos_*``) on the
local PostgreSQL and MariaDB, enqueues a workload whose every execution writes a
row to a ledger table (:class:`chaos.models.Execution`), runs several real
``qcluster`` processes on it and injects faults on a schedule (see
:mod:`chaos.faults`). At the end it counts every task against the ledger and
prints one table (:mod:`chaos.report`). ``python -m chaos longlife`` runs one
worker through many small tasks and samples its memory and connections.

See docs/reliability.md for the scenarios and the figures measured.
"""
