//! The Redis telemetry store, for controllers run as several replicas sharing one Redis.
//!
//! Layout, for a device `D` (its keys share the hash tag `{D}`):
//! - `adamant:telemetry:{D}:KIND`: one Redis stream per kind; each record is an entry whose id
//!   *is* the record's [`Id`] (`MILLIS-SEQ`), with the fields `n` (the body's length) and either
//!   `b` (the body as given) or `z` (the body deflated, for bodies of at least 96 bytes that it
//!   makes smaller);
//! - `adamant:telemetry:{D}`: a hash with, per kind, `KIND:last` (the last id given, kept when
//!   retention empties the stream, so ids never go back) and `KIND:bytes` (the bytes of the
//!   bodies kept: exact byte budgets without scanning);
//! - `adamant:telemetry:devices`: the set of devices with streams, which `trim` walks.
//!
//! Every write is one Lua script, which Redis runs atomically: an append reads the stream's last
//! id, assigns the ids (`Id::assign`'s rule), `XADD`s with explicit ids and updates the hash, so
//! appends from any number of replicas never collide or go back. Redis reserves `0-0`: a record
//! of millisecond 0 in a stream that never had one gets `0-1`. Trim drops, per stream, the
//! oldest entries while they are older than the age or the stream is over its byte budget, with
//! one `XTRIM MINID` (exact, not `~`) at the first entry kept, and subtracts their lengths from
//! `KIND:bytes`. `forget` deletes the device's keys. Reads are `XRANGE`/`XREVRANGE`; `wait` is
//! `XREAD BLOCK` on a connection of its own (a blocked command would hold up every other on a
//! shared connection), after a look at `KIND:last`.
//!
//! Durability: `append` returns when Redis has answered the script. That answer means the
//! records survive a crash of the machine only with `appendonly yes` and `appendfsync always`
//! (Redis fsyncs its append-only file before it answers); with `appendfsync everysec`, Redis's
//! default, they survive a crash of Redis itself but up to about a second of them can be lost
//! with the machine. [`RedisTelemetry::connect`] logs a warning when the server says otherwise.
//! Replicas of Redis are asynchronous: a failover can lose what the old primary acknowledged.
//! The scripts name the devices set as well as a device's keys, so this runs on one Redis (with
//! replicas or Sentinel), not on Redis Cluster.

pub mod server;

use std::io::{Read, Write};
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use flate2::Compression;
use flate2::read::DeflateDecoder;
use flate2::write::DeflateEncoder;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, Script, Value};
use telemetry::{
    Id, Kind, MAX_RECORD_BYTES, NewRecord, Range, Record, Result, Retention, StreamKey,
    TelemetryError, TelemetryStore, check,
};

/// Bodies this long or longer are deflated when that makes them smaller.
const COMPRESS_FROM: usize = 96;
/// At most this many records are dropped by one trim script, so Redis is never held long.
const MAX_TRIMMED_PER_SCRIPT: u64 = 10_000;
/// How long a command other than `XREAD BLOCK` may take.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);
/// At most this many idle connections for `wait` are kept.
const IDLE_WAITERS: usize = 32;
const DEVICES: &str = "adamant:telemetry:devices";

/// KEYS: the stream, the device's hash, the devices set. ARGV: the kind, the device, then per
/// record its millis, its body's length, its field (`b` or `z`) and its stored body.
const APPEND: &str = r"
local kind = ARGV[1]
local last = redis.call('HGET', KEYS[2], kind .. ':last') or '0-0'
local dash = string.find(last, '-', 1, true)
local lm = string.sub(last, 1, dash - 1)
local ls = tonumber(string.sub(last, dash + 1))
local ids = {}
local bytes = 0
for i = 3, #ARGV, 4 do
  local millis = ARGV[i]
  -- Decimal strings without leading zeros: the longer is the larger, else compare the text.
  if #millis > #lm or (#millis == #lm and millis > lm) then
    lm = millis
    ls = 0
  else
    ls = ls + 1
  end
  local id = lm .. '-' .. string.format('%d', ls)
  redis.call('XADD', KEYS[1], id, 'n', ARGV[i + 1], ARGV[i + 2], ARGV[i + 3])
  bytes = bytes + tonumber(ARGV[i + 1])
  ids[#ids + 1] = id
end
redis.call('HSET', KEYS[2], kind .. ':last', lm .. '-' .. string.format('%d', ls))
redis.call('HINCRBY', KEYS[2], kind .. ':bytes', bytes)
redis.call('SADD', KEYS[3], ARGV[2])
return ids
";

/// KEYS: the device's six streams, then its hash. ARGV: the oldest millis kept, the byte
/// budget, the most records to drop, then the six kinds. Returns how many records went and
/// whether the budget stopped it.
const TRIM: &str = r"
local oldest = ARGV[1]
local max = tonumber(ARGV[2])
local budget = tonumber(ARGV[3])
local removed = 0
local stopped = 0
for k = 1, 6 do
  local key = KEYS[k]
  local kind = ARGV[3 + k]
  local bytes = tonumber(redis.call('HGET', KEYS[7], kind .. ':bytes') or '0')
  local dropped = 0
  local kept = nil
  local start = '-'
  while kept == nil do
    local entries = redis.call('XRANGE', key, start, '+', 'COUNT', 256)
    if #entries == 0 then break end
    for _, entry in ipairs(entries) do
      local id = entry[1]
      local millis = string.sub(id, 1, string.find(id, '-', 1, true) - 1)
      local old = #millis < #oldest or (#millis == #oldest and millis < oldest)
      if (not old and bytes <= max) or removed == budget then
        kept = id
        break
      end
      local fields = entry[2]
      for j = 1, #fields, 2 do
        if fields[j] == 'n' then bytes = bytes - tonumber(fields[j + 1]) end
      end
      removed = removed + 1
      dropped = dropped + 1
      start = '(' .. id
    end
  end
  if dropped > 0 then
    if kept then
      redis.call('XTRIM', key, 'MINID', kept)
    else
      redis.call('XTRIM', key, 'MAXLEN', 0)
    end
    redis.call('HSET', KEYS[7], kind .. ':bytes', string.format('%d', bytes))
  end
  if removed == budget then
    stopped = 1
    break
  end
end
return {removed, stopped}
";

/// KEYS: the device's six streams, its hash, the devices set. ARGV: the device.
const FORGET: &str = r"
for k = 1, 7 do redis.call('DEL', KEYS[k]) end
redis.call('SREM', KEYS[8], ARGV[1])
return 1
";

/// The Redis telemetry store. See the crate documentation.
pub struct RedisTelemetry {
    client: Client,
    connection: MultiplexedConnection,
    /// Connections for `XREAD BLOCK`, idle.
    waiters: Mutex<Vec<MultiplexedConnection>>,
    append: Script,
    trim: Script,
    forget: Script,
}

fn unavailable(e: impl std::fmt::Display) -> TelemetryError {
    TelemetryError::Unavailable(e.to_string())
}

fn damaged(what: impl Into<String>) -> TelemetryError {
    TelemetryError::Damaged(what.into())
}

fn stream_key(device: &str, kind: Kind) -> String {
    format!("adamant:telemetry:{{{device}}}:{kind}")
}

fn device_key(device: &str) -> String {
    format!("adamant:telemetry:{{{device}}}")
}

/// The field and stored form of `body`.
fn encode(body: &[u8]) -> (&'static str, Vec<u8>) {
    if body.len() >= COMPRESS_FROM {
        let mut encoder = DeflateEncoder::new(Vec::new(), Compression::fast());
        if encoder.write_all(body).is_ok()
            && let Ok(deflated) = encoder.finish()
            && deflated.len() < body.len()
        {
            return ("z", deflated);
        }
    }
    ("b", body.to_vec())
}

/// The records of an `XRANGE` answer.
fn records(value: Value) -> Result<Vec<Record>> {
    let Value::Array(entries) = value else {
        return Ok(Vec::new());
    };
    entries.into_iter().map(record).collect()
}

fn record(entry: Value) -> Result<Record> {
    let Value::Array(parts) = entry else {
        return Err(damaged("a stream entry is not an array"));
    };
    let mut parts = parts.into_iter();
    let (Some(Value::BulkString(id)), Some(Value::Array(fields))) = (parts.next(), parts.next())
    else {
        return Err(damaged("a stream entry has no id or fields"));
    };
    let id = std::str::from_utf8(&id)
        .ok()
        .and_then(|id| id.parse::<Id>().ok())
        .ok_or_else(|| damaged("a stream entry's id is not MILLIS-SEQ"))?;
    let mut len = None;
    let mut body = None;
    let mut fields = fields.into_iter();
    while let (Some(Value::BulkString(name)), Some(Value::BulkString(value))) =
        (fields.next(), fields.next())
    {
        match &name[..] {
            b"n" => {
                len = std::str::from_utf8(&value)
                    .ok()
                    .and_then(|n| n.parse().ok())
            }
            b"b" | b"z" => body = Some((name[0], value)),
            _ => {}
        }
    }
    let len: usize = len.ok_or_else(|| damaged(format!("record {id} has no length")))?;
    let body = match body {
        Some((b'b', raw)) if raw.len() == len => Bytes::from(raw),
        Some((b'z', deflated)) if len <= MAX_RECORD_BYTES => {
            let mut body = Vec::with_capacity(len);
            DeflateDecoder::new(&deflated[..])
                .take(len as u64 + 1)
                .read_to_end(&mut body)
                .map_err(|e| damaged(format!("record {id} does not inflate: {e}")))?;
            if body.len() != len {
                return Err(damaged(format!("record {id} inflates to another length")));
            }
            Bytes::from(body)
        }
        _ => return Err(damaged(format!("record {id} has no body of its length"))),
    };
    Ok(Record { id, body })
}

impl RedisTelemetry {
    /// Connects to the Redis at `url` (`redis://host:port/db`, `rediss://` for TLS when the
    /// `redis` crate is built with it).
    pub async fn connect(url: &str) -> Result<RedisTelemetry> {
        let client = Client::open(url).map_err(unavailable)?;
        let config = AsyncConnectionConfig::new().set_response_timeout(Some(RESPONSE_TIMEOUT));
        let mut connection = client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(unavailable)?;
        // Managed Redis may refuse CONFIG; the warning is only advice.
        let settings: redis::RedisResult<Vec<String>> = redis::cmd("CONFIG")
            .arg("GET")
            .arg("append*")
            .query_async(&mut connection)
            .await;
        if let Ok(settings) = settings {
            let get = |name: &str| {
                settings
                    .chunks(2)
                    .find(|pair| pair[0] == name)
                    .and_then(|pair| pair.get(1).cloned())
            };
            if get("appendonly").as_deref() != Some("yes")
                || get("appendfsync").as_deref() != Some("always")
            {
                tracing::warn!(
                    url,
                    appendonly = ?get("appendonly"),
                    appendfsync = ?get("appendfsync"),
                    "this Redis does not fsync each write (appendonly yes, appendfsync always): acknowledged telemetry can be lost if its machine fails"
                );
            }
        }
        Ok(RedisTelemetry {
            client,
            connection,
            waiters: Mutex::new(Vec::new()),
            append: Script::new(APPEND),
            trim: Script::new(TRIM),
            forget: Script::new(FORGET),
        })
    }

    fn con(&self) -> MultiplexedConnection {
        self.connection.clone()
    }

    async fn waiter(&self) -> Result<MultiplexedConnection> {
        let idle = self.waiters.lock().unwrap_or_else(|e| e.into_inner()).pop();
        match idle {
            Some(con) => Ok(con),
            None => {
                let config = AsyncConnectionConfig::new().set_response_timeout(None);
                self.client
                    .get_multiplexed_async_connection_with_config(&config)
                    .await
                    .map_err(unavailable)
            }
        }
    }

    async fn last(&self, stream: &StreamKey) -> Result<Option<Id>> {
        let last: Option<String> = redis::cmd("HGET")
            .arg(device_key(&stream.device))
            .arg(format!("{}:last", stream.kind))
            .query_async(&mut self.con())
            .await
            .map_err(unavailable)?;
        last.map(|l| l.parse().map_err(damaged)).transpose()
    }
}

#[async_trait::async_trait]
impl TelemetryStore for RedisTelemetry {
    async fn append(&self, stream: &StreamKey, new: Vec<NewRecord>) -> Result<Vec<Id>> {
        check(&new)?;
        if new.is_empty() {
            return Ok(Vec::new());
        }
        let mut invocation = self.append.prepare_invoke();
        invocation
            .key(stream_key(&stream.device, stream.kind))
            .key(device_key(&stream.device))
            .key(DEVICES)
            .arg(stream.kind.as_str())
            .arg(&stream.device);
        for record in &new {
            let (field, stored) = encode(&record.body);
            invocation
                .arg(record.millis)
                .arg(record.body.len())
                .arg(field)
                .arg(stored);
        }
        let ids: Vec<String> = invocation
            .invoke_async(&mut self.con())
            .await
            .map_err(unavailable)?;
        ids.iter().map(|id| id.parse().map_err(damaged)).collect()
    }

    async fn read(&self, stream: &StreamKey, range: &Range) -> Result<Vec<Record>> {
        let key = stream_key(&stream.device, stream.kind);
        let start = range
            .after
            .map_or_else(|| "-".to_string(), |after| format!("({after}"));
        let end = range
            .until
            .map_or_else(|| "+".to_string(), |until| until.to_string());
        if range
            .after
            .is_some_and(|after| after.millis == u64::MAX && after.seq == u64::MAX)
        {
            return Ok(Vec::new());
        }
        let mut cmd = if range.tail {
            let mut cmd = redis::cmd("XREVRANGE");
            cmd.arg(&key).arg(&end).arg(&start);
            cmd
        } else {
            let mut cmd = redis::cmd("XRANGE");
            cmd.arg(&key).arg(&start).arg(&end);
            cmd
        };
        if range.limit > 0 {
            cmd.arg("COUNT").arg(range.limit);
        }
        let value: Value = cmd
            .query_async(&mut self.con())
            .await
            .map_err(unavailable)?;
        let mut records = records(value)?;
        if range.tail {
            records.reverse();
        }
        Ok(records)
    }

    async fn first(&self, stream: &StreamKey) -> Result<Option<Id>> {
        let value: Value = redis::cmd("XRANGE")
            .arg(stream_key(&stream.device, stream.kind))
            .arg("-")
            .arg("+")
            .arg("COUNT")
            .arg(1)
            .query_async(&mut self.con())
            .await
            .map_err(unavailable)?;
        Ok(records(value)?.first().map(|r| r.id))
    }

    async fn wait(&self, stream: &StreamKey, after: Id, timeout: Duration) -> Result<bool> {
        if self.last(stream).await?.is_some_and(|last| last > after) {
            return Ok(true);
        }
        let mut con = self.waiter().await?;
        // BLOCK 0 would wait for ever.
        let block = timeout.as_millis().max(1);
        let mut xread = redis::cmd("XREAD");
        xread
            .arg("COUNT")
            .arg(1)
            .arg("BLOCK")
            .arg(block as u64)
            .arg("STREAMS")
            .arg(stream_key(&stream.device, stream.kind))
            .arg(after.to_string());
        let read = xread.query_async::<Value>(&mut con);
        // A Redis that does not answer its own deadline is unavailable.
        let value = tokio::time::timeout(timeout + RESPONSE_TIMEOUT, read)
            .await
            .map_err(|_| unavailable("Redis did not answer XREAD BLOCK by its deadline"))?
            .map_err(unavailable)?;
        let mut idle = self.waiters.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < IDLE_WAITERS {
            idle.push(con);
        }
        Ok(!matches!(value, Value::Nil))
    }

    async fn trim(&self, retention: &Retention, now_millis: u64) -> Result<u64> {
        let oldest_kept = now_millis.saturating_sub(retention.max_age.as_millis() as u64);
        let devices: Vec<String> = redis::cmd("SMEMBERS")
            .arg(DEVICES)
            .query_async(&mut self.con())
            .await
            .map_err(unavailable)?;
        let mut removed = 0;
        for device in devices {
            loop {
                let mut invocation = self.trim.prepare_invoke();
                for kind in Kind::ALL {
                    invocation.key(stream_key(&device, kind));
                }
                invocation
                    .key(device_key(&device))
                    .arg(oldest_kept)
                    .arg(retention.max_bytes)
                    .arg(MAX_TRIMMED_PER_SCRIPT);
                for kind in Kind::ALL {
                    invocation.arg(kind.as_str());
                }
                let (n, stopped): (u64, u64) = invocation
                    .invoke_async(&mut self.con())
                    .await
                    .map_err(unavailable)?;
                removed += n;
                if stopped == 0 {
                    break;
                }
            }
        }
        Ok(removed)
    }

    async fn forget(&self, device: &str) -> Result<()> {
        let mut invocation = self.forget.prepare_invoke();
        for kind in Kind::ALL {
            invocation.key(stream_key(device, kind));
        }
        invocation.key(device_key(device)).key(DEVICES).arg(device);
        invocation
            .invoke_async::<()>(&mut self.con())
            .await
            .map_err(unavailable)
    }
}
