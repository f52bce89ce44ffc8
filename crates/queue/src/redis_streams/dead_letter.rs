//! Moving an entry to the dead-letter stream: one server-side script, so
//! the copy and the acknowledgement happen together and the original
//! fields travel unchanged even when they do not make an envelope.
//!
//! A dead letter holds the original entry's fields, then `reason`,
//! `original_id` and `deliveries`.

use redis::Script;

/// KEYS: job stream, dead-letter stream. ARGV: group, entry id, reason,
/// deliveries. Returns what `XACK` returns (1 when it was pending).
const SOURCE: &str = r"
local entry = redis.call('XRANGE', KEYS[1], ARGV[2], ARGV[2])
local fields = {}
if entry[1] then fields = entry[1][2] end
-- Acknowledge first: a missing group fails here, before anything is written.
local acked = redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
local n = #fields
fields[n + 1] = 'reason'
fields[n + 2] = ARGV[3]
fields[n + 3] = 'original_id'
fields[n + 4] = ARGV[2]
fields[n + 5] = 'deliveries'
fields[n + 6] = ARGV[4]
redis.call('XADD', KEYS[2], '*', unpack(fields))
return acked
";

/// The script (cheap to keep: the client sends `EVALSHA` and falls back to
/// `EVAL` once per connection).
pub(crate) fn script() -> Script {
    Script::new(SOURCE)
}
