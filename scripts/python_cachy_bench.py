"""Throughput of the real Python cachy 0.3.0 on one store, for the comparison benchmarks.

Usage: python_cachy_bench.py '<store config as JSON>' <get|put> <seconds> <threads>
Prints the operations per second. The value is the same small struct the Rust benchmarks
use, as a dict.
"""
import json
import sys
import threading
import time

from cachy import CacheManager

config, op, seconds, threads = json.loads(sys.argv[1]), sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
cache = CacheManager({"stores": {"bench": config}})
store = cache.store("bench")
value = {"id": 42, "name": "Anne", "active": True}
store.put("pyhit", value, 60)

counts = [0] * threads
deadline = time.perf_counter() + seconds


def run(slot):
    done = 0
    while time.perf_counter() < deadline:
        if op == "get":
            store.get("pyhit")
        else:
            store.put("pyput", value, 60)
        done += 1
    counts[slot] = done


start = time.perf_counter()
workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
for worker in workers:
    worker.start()
for worker in workers:
    worker.join()
print(sum(counts) / (time.perf_counter() - start))
