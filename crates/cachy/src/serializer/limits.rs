//! Bounds on what decoding one stored value may cost.

/// How much work and memory reading one stored value may take, whoever wrote it.
///
/// A shared cache is untrusted input: another program, another version of this crate or a
/// person may have written the bytes. With these limits any byte string decodes to a value
/// or a [`Deserialize`](crate::ErrorKind::Deserialize) error, in time and memory
/// proportional to its length, without deep recursion:
///
/// - **depth**: containers nested more than [`max_depth`](Self::max_depth) levels
///   (default 128) are an error in pickle and msgpack; JSON keeps `serde_json`'s own fixed
///   limit of 128 levels;
/// - **expansion**: a pickle may reference one object many times (its memo), so a few bytes
///   can describe a huge value; decoding stops once the value would take more than
///   [`max_expansion`](Self::max_expansion) times the stored size (default 64x), or
///   16 MiB, whichever is larger. JSON and msgpack have no references, so they cannot
///   expand beyond their input.
///
/// Integers are read only within 64 bits (the serde data model), so integer text longer than
/// that is an error before any parsing work. Custom serializers enforce their own limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    max_depth: usize,
    max_expansion: usize,
}

/// The budget every value may use whatever its stored size, so small values never hit the
/// expansion limit.
pub(crate) const MIN_DECODE_BUDGET: usize = 16 << 20;

impl Default for DecodeLimits {
    fn default() -> Self {
        DecodeLimits {
            max_depth: 128,
            max_expansion: 64,
        }
    }
}

impl DecodeLimits {
    /// Allow containers nested up to `depth` levels (at least 1). Each level costs stack
    /// while decoding: keep it in the hundreds on threads with small stacks.
    pub fn with_max_depth(mut self, depth: usize) -> Self {
        self.max_depth = depth.max(1);
        self
    }

    /// Allow a decoded value up to `factor` times its stored size (at least 1).
    pub fn with_max_expansion(mut self, factor: usize) -> Self {
        self.max_expansion = factor.max(1);
        self
    }

    /// The deepest nesting accepted.
    pub fn max_depth(&self) -> usize {
        self.max_depth
    }

    /// The largest ratio of decoded size to stored size accepted.
    pub fn max_expansion(&self) -> usize {
        self.max_expansion
    }

    /// The decoded size a value of `stored` bytes may reach.
    pub(crate) fn budget(&self, stored: usize) -> usize {
        stored
            .saturating_mul(self.max_expansion)
            .max(MIN_DECODE_BUDGET)
    }
}
