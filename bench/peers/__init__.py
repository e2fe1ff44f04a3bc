"""The systems the benchmark runs, one module or package each.

Each exposes the client side (enqueue, probes) that `python -m bench.client`
calls inside that system's own settings; the runner (`bench.systems`) knows how
to start its workers and count its queue.
"""
