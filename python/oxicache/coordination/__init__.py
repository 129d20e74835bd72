"""Work shared between requests and processes: one handler run for concurrent misses of one
key, in this process (:mod:`.singleflight`) and across processes on Redis
(:mod:`.distributed_flight`), and the invalidation messages that keep two tiers coherent
(:mod:`.coherence`)."""
