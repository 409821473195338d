"""The Python side of `examples/interop.rs`: Python cachy 0.3.0 on the cache Rust wrote.

Run it between the Rust example's `write` and `read` steps, with the virtualenv's python
(`./scripts/python-env` makes it and prints its path; Python 3.11 or later, for tomllib):

    PYTHON=$(./scripts/python-env)
    DIR=$(mktemp -d)
    cargo run --example interop -- write "$DIR"
    $PYTHON crates/cachy/examples/interop.py "$DIR"
    cargo run --example interop -- read "$DIR"

It loads the same config file as Rust, DIR/cache.toml, after dropping the fields only the
Rust crate knows: Python cachy hands a Redis or memcached store's fields to redis-py's or
python-memcached's constructor, which raises TypeError on a field it does not know.
"""
import sys
import tomllib

from cachy import CacheManager

# Store fields of the Rust crate that Python cachy does not take (see the README's
# "Configuration" table). Python's file store ignores unknown fields; its Redis and
# memcached stores pass them to redis-py's or python-memcached's constructor, which raises
# TypeError on them. Both sides take `host`, `port`, `db`, `username`, `password`, `prefix`,
# `servers`, `path` and `hash_type`. A store's own `serializer` fails the same way on Python's
# Redis and memcached stores (it reaches the client too): set `serializer` at the top.
RUST_ONLY = {
    "integers", "decode_max_depth", "decode_max_expansion", "url", "cluster",
    "connect_timeout", "response_timeout", "retry_after", "circuit_breaker",
    "tls_ca_file", "tls_cert_file", "tls_key_file", "permissions", "max_entries", "max_bytes",
    "timeout", "max_connections", "max_value_size",
}


def python_config(path):
    with open(path, "rb") as fh:
        config = tomllib.load(fh)
    for name, store in config["stores"].items():
        dropped = sorted(RUST_ONLY & store.keys())
        for field in dropped:
            del store[field]
        if dropped:
            print(f"python dropped Rust-only fields of stores.{name}: {', '.join(dropped)}")
    return config


def show(store_name, key, value):
    print(f"python read {store_name} {key} = {value!r} ({type(value).__name__})")


def main(folder):
    config = python_config(f"{folder}/cache.toml")
    cache = CacheManager(config)

    file = cache.store("file")
    for key in ["greeting", "answer", "primes", "point", "pair", "user", "visits"]:
        show("file", key, file.get(key))
    print(f"python incremented file visits to {file.increment('visits', 1)}")
    file.put("py:greeting", "hello from Python", 10)
    file.put("py:answer", 7, 10)
    file.put("py:list", [1, 2, 3], 10)
    file.put("py:tuple", ("b", 2), 10)
    file.put("py:dict", {"language": "python", "version": (3, 11)}, 10)
    # Python's file increment needs an existing item, with a lifetime (see interop.rs).
    file.put("py:counter", 10, 10)
    print(f"python incremented file py:counter to {file.increment('py:counter', 1)}")

    if "redis" in config["stores"]:
        redis = cache.store("redis")
        for key in ["greeting", "user"]:
            show("redis", key, redis.get(key))
        try:
            show("redis", "hits", redis.get("hits"))
        except Exception as error:  # decimal text is not a pickle
            print(f"python get redis hits -> {type(error).__name__}: {error}")
        print(f"python incremented redis hits to {redis.increment('hits', 2)}")
        redis.put("py:greeting", "hello from Python", 10)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: interop.py DIR  (the folder given to `cargo run --example interop -- write`)")
    main(sys.argv[1])
