"""Any benchmark app under a tuned garbage collector: the module named by BENCH_GC_APP
(``apps.oxi``, ``apps.prebuilt``...), imported, then ``gc.freeze()`` and a young-generation
threshold of BENCH_GC_THRESHOLD (default 10,000 instead of CPython's 700).

Why: a request that awaits I/O (a Redis read) holds FastAPI's per-request objects (about 80
containers: coroutines, scope, Request, dependency results) while it is suspended. With 32
requests suspended at once, the net count of new containers passes 700 on every burst, so
CPython runs a young collection every dozen requests and, as survivors are promoted, a full
collection of the whole heap a few times a second (20 ms each). Nothing is garbage: those
objects are freed by reference counting a moment later. A request answered without awaiting
(a memory hit, a prebuilt Response) never triggers it. The runner's ``--gc tuned`` serves
every target through this module, so ratios stay side by side; the default run does not.
"""

import gc
import importlib
import os

app = importlib.import_module(os.environ["BENCH_GC_APP"]).app

gc.collect()
gc.freeze()  # startup objects (FastAPI, pydantic, the libraries) leave the collector's scans
gc.set_threshold(int(os.environ.get("BENCH_GC_THRESHOLD", "10000")), 10, 10)
