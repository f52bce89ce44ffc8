//! Who owns a pending job, checked inside Redis: fencing a server that lost
//! its jobs to a reclaim, and forgetting consumers that are gone.
//!
//! A server stopped (SIGSTOP, a long pause, a network cut) past the
//! reclaim time finds, when it resumes, that another server has taken its
//! jobs over with `XAUTOCLAIM` and may have answered them already. Before
//! it writes verdicts it asks, in one script per batch, which of its
//! entries it still owns; for those the script restarts the idle time
//! (`XCLAIM … JUSTID`, which does not count a delivery), so no one else
//! reclaims them for another reclaim period, and the verdicts of the
//! others are dropped.
//!
//! Results-stream replies go further: the ownership check, the `XADD` of
//! the reply and the `XACK` of its job are one script (`DELIVER`), so
//! neither a stall nor a kill between them can deliver a verdict twice.
//!
//! Forgetting a consumer happens in a script too: checking that it has
//! nothing pending and removing it must be one step, or a consumer that
//! took jobs in between would lose them from the pending list.

use redis::Script;

/// KEYS: job stream. ARGV: group, consumer, then entry ids. Returns one
/// integer per id: 1 if the consumer owns it (its idle time is now 0),
/// 0 if another consumer does or it is not pending any more.
const RENEW: &str = r"
local owned = {}
for i = 3, #ARGV do
  local pending = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)
  if pending[1] and pending[1][2] == ARGV[2] then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')
    owned[#owned + 1] = 1
  else
    owned[#owned + 1] = 0
  end
end
return owned
";

/// KEYS: job stream. ARGV: group, idle milliseconds, the caller's own
/// consumer name. Removes every other consumer with nothing pending that
/// has been idle at least that long; returns their names.
const FORGET: &str = r"
local gone = {}
for _, consumer in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
  local info = {}
  for i = 1, #consumer, 2 do info[consumer[i]] = consumer[i + 1] end
  if info['pending'] == 0 and info['idle'] >= tonumber(ARGV[2])
     and info['name'] ~= ARGV[3] then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], info['name'])
    gone[#gone + 1] = info['name']
  end
end
return gone
";

/// KEYS: job stream, results stream. ARGV: group, consumer, then pairs of
/// entry id and encoded reply. For each pair the consumer owns, appends
/// the reply (when the results stream exists) and acknowledges the job;
/// returns one integer per pair, 1 if it was the consumer's.
const DELIVER: &str = r"
local exists = redis.call('EXISTS', KEYS[2]) == 1
local owned = {}
for i = 3, #ARGV, 2 do
  local pending = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)
  if pending[1] and pending[1][2] == ARGV[2] then
    if exists then
      redis.call('XADD', KEYS[2], 'NOMKSTREAM', '*', 'reply', ARGV[i + 1])
    end
    redis.call('XACK', KEYS[1], ARGV[1], ARGV[i])
    owned[#owned + 1] = 1
  else
    owned[#owned + 1] = 0
  end
end
return owned
";

/// Delivery of owned jobs' replies with their acknowledgement, in one step.
pub(crate) fn deliver_script() -> Script {
    Script::new(DELIVER)
}

/// The ownership check and lease renewal.
pub(crate) fn renew_script() -> Script {
    Script::new(RENEW)
}

/// The removal of idle consumers with nothing pending.
pub(crate) fn forget_script() -> Script {
    Script::new(FORGET)
}
