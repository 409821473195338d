"""The Python side of the interop tests: runs operations with the real Python cachy 0.3.0.

Usage: interop.py '<json>' where json is
  {"serializer": "pickle", "store": {<store config>}, "ops": [{"op": ..., ...}, ...]}
Values are Python literals (evaluated here: they come from our own tests). Prints a JSON
object with one entry per op that reads something.
"""
import fractions
import json
import sys

from cachy import CacheManager

command = json.loads(sys.argv[1])
cache = CacheManager({"serializer": command["serializer"], "stores": {"s": command["store"]}})
store = cache.store("s")
results = {}

for op in command["ops"]:
    kind, key = op["op"], op.get("key")
    target = store.tags(*op["tags"]) if op.get("tags") else store
    try:
        if kind == "put":
            target.put(key, eval(op["value"]), op.get("minutes", 10))
        elif kind == "forever":
            target.forever(key, eval(op["value"]))
        elif kind == "put_instance":
            target.forever(key, fractions.Fraction(1, 3))
        elif kind == "check":
            value, expected = target.get(key), eval(op["expected"])
            same = value == expected and type(value) is type(expected)
            results[op["id"]] = {"same": same, "repr": repr(value)}
        elif kind == "get":
            results[op["id"]] = {"repr": repr(target.get(key))}
        elif kind == "increment":
            results[op["id"]] = {"repr": repr(target.increment(key, op.get("by", 1)))}
        elif kind == "flush":
            target.flush()
    except Exception as error:  # reported to the Rust side, which asserts on it
        results[op.get("id", key or kind)] = {"error": type(error).__name__, "repr": str(error)}

print(json.dumps(results))
