//! Taking job entries without holding oversized ones: `XREADGROUP` and
//! `XAUTOCLAIM` run inside one server-side script that measures every
//! entry and sends back, for one larger than the limit, only its size.
//!
//! Redis's own bound on a field is 512 MB, and a fetch takes up to a batch
//! of entries: without this a stranger who can `XADD` makes every server
//! hold gigabytes before it could parse anything. The script replaces the
//! fields of such an entry with [`FIELD_TOO_LARGE`] (its size) and
//! [`FIELD_LIMIT`]; the entry stays pending, whole, in Redis, and the
//! consumer dead-letters it like any entry that is not a job (the
//! dead-letter script copies the original fields inside Redis).
//!
//! Scripts cannot block, so a fetch that finds nothing waits by polling
//! (see `RedisQueue::fetch`).

use redis::Script;

/// Field of a too-large entry as the script returns it: its size in bytes
/// (field names and values together).
pub(crate) const FIELD_TOO_LARGE: &str = "hotwasm:too-large";
/// Field of a too-large entry as the script returns it: the limit.
pub(crate) const FIELD_LIMIT: &str = "hotwasm:limit";

/// KEYS: job stream. ARGV: mode (`new`, `own` or `claim`), group,
/// consumer, count, max entry bytes; for `own` also the id to read after
/// (`0` from the start; delivery counts are left alone);
/// for `claim` also min idle ms and the cursor. Returns what `XREADGROUP`
/// (nil or `[[stream, entries]]`) or `XAUTOCLAIM` (`[cursor, entries,
/// deleted]`) returns, with the fields of too-large entries replaced.
const SOURCE: &str = r"
local reply, entries
if ARGV[1] == 'new' then
  reply = redis.call('XREADGROUP', 'GROUP', ARGV[2], ARGV[3], 'COUNT', ARGV[4],
                     'STREAMS', KEYS[1], '>')
  if not reply then return false end
  entries = reply[1][2]
elseif ARGV[1] == 'own' then
  -- The consumer's pending entries after the given id, read with XPENDING
  -- and XRANGE: reading its history with XREADGROUP would count one more
  -- delivery of each, every time.
  local from = '-'
  if ARGV[6] ~= '0' then from = '(' .. ARGV[6] end
  entries = {}
  for _, pending in ipairs(redis.call('XPENDING', KEYS[1], ARGV[2], from, '+',
                                      ARGV[4], ARGV[3])) do
    local found = redis.call('XRANGE', KEYS[1], pending[1], pending[1])
    if found[1] then
      entries[#entries + 1] = found[1]
    else
      entries[#entries + 1] = {pending[1], false}
    end
  end
  reply = {{KEYS[1], entries}}
else
  reply = redis.call('XAUTOCLAIM', KEYS[1], ARGV[2], ARGV[3], ARGV[6], ARGV[7],
                     'COUNT', ARGV[4])
  entries = reply[2]
end
local limit = tonumber(ARGV[5])
for _, entry in ipairs(entries) do
  local fields = entry[2]
  -- false: an entry deleted while pending (XAUTOCLAIM before Redis 7).
  if fields then
    local size = 0
    for i = 1, #fields do size = size + #fields[i] end
    if size > limit then
      entry[2] = {'hotwasm:too-large', tostring(size), 'hotwasm:limit', ARGV[5]}
    end
  end
end
return reply
";

/// The script (the client sends `EVALSHA` and falls back to `EVAL` once
/// per connection).
pub(crate) fn script() -> Script {
    Script::new(SOURCE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_writes_the_field_names_the_parser_reads() {
        assert!(SOURCE.contains(&format!("'{FIELD_TOO_LARGE}'")));
        assert!(SOURCE.contains(&format!("'{FIELD_LIMIT}'")));
    }
}
