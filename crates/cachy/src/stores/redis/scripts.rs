//! The Lua scripts of the atomic operations, and how their errors read.

use redis::{Cmd, cmd};

use crate::error::{Error, ErrorKind};
use crate::store::Ttl;

/// Swap a value only if it is the expected one (`ARGV[1]` = `replace`, keeping the TTL), or
/// create it only if absent (`create`, kept forever). One key, so it runs on any cluster node
/// that owns it.
pub(super) const COMPARE_AND_SWAP: &str = r"
local stored = redis.call('GET', KEYS[1])
if ARGV[1] == 'create' then
  if stored then return 0 end
  redis.call('SET', KEYS[1], ARGV[3])
  return 1
end
if stored ~= ARGV[2] then return 0 end
redis.call('SET', KEYS[1], ARGV[3], 'KEEPTTL')
return 1
";

/// Delete the key only if it holds `ARGV[1]`; 1 if it did.
pub(super) const COMPARE_AND_DELETE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
";

/// Remove a key's TTL; 1 if the key exists (`PERSIST` alone cannot tell a key without a TTL
/// from a missing one).
pub(super) const PERSIST: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('PERSIST', KEYS[1])
return 1
";

/// Create the counter holding `ARGV[1]` for `ARGV[2]` seconds, or add `ARGV[1]` to it: one
/// round trip, atomic, and an existing counter keeps its TTL.
pub(super) const INCREMENT_EXPIRING: &str = r"
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then return tonumber(ARGV[1]) end
return redis.call('INCRBY', KEYS[1], ARGV[1])
";

/// Redis refuses a counter that is not an integer, and one that would overflow, with a plain
/// `ERR` and a fixed text: the text is all there is to tell them apart.
pub(super) fn counter_error(e: Error) -> Error {
    let message = e.to_string();
    let (kind, what) = if message.contains("would overflow") {
        (
            ErrorKind::Overflow,
            "the result would overflow a 64-bit counter; the counter is left as it was",
        )
    } else if message.contains("not an integer") {
        (
            ErrorKind::NotAnInteger,
            "the stored value is not an integer; it is left as it was",
        )
    } else {
        return e;
    };
    Error::new(kind, what).with_source(e)
}

pub(super) fn set_command(key: impl redis::ToRedisArgs, value: &[u8], ttl: Ttl) -> Cmd {
    let mut set = cmd("SET");
    set.arg(key).arg(value);
    if let Some(seconds) = ttl {
        set.arg("EX").arg(seconds);
    }
    set
}
