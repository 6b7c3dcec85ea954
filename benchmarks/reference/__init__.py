"""The references of issue 12's goals, run beside Khalex Pay in the same run: the reference
app (the shape of a throwaway prototype) and a no-op Dramatiq worker."""

#: The no-op worker's queue and actor (benchmarks/reference/noop_worker.py).
NOOP_QUEUE, NOOP_ACTOR = "reference-noop", "noop"
