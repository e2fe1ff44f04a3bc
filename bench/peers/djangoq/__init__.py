"""Django-Q2 with its ORM broker, at its defaults or tuned (BENCH_DJANGOQ_TUNED=1)."""
