//! Crash test: a child process appends continuously from several tasks (two per stream) and
//! reports each acknowledged record; it is killed with SIGKILL at a varying point, many times
//! over the same file; after each kill the store is reopened and every acknowledged record must
//! be there with its body, and new appends must get ids after every acknowledged one.
//!
//! Then metrics, which are synced a while after their appends return: a child appends metrics,
//! waits for the writer's next sync, and is killed; every metrics record it appended is there.
//!
//! The child is this same binary, started with `--child DIR ROUND` (or `--metrics-child DIR`).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use telemetry::{Id, Kind, NewRecord, Range, StreamKey, TelemetryStore};
use telemetry_embedded::{EmbeddedTelemetry, Options};

const KILLS: usize = 12;
const WRITERS: usize = 8;
const STREAMS: usize = 4;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let [_, flag, dir, round] = &args[..]
        && flag == "--child"
    {
        child(Path::new(dir), round);
        return;
    }
    if let [_, flag, dir] = &args[..]
        && flag == "--metrics-child"
    {
        metrics_child(Path::new(dir));
        return;
    }
    // `cargo test` passes harness flags; this binary has one test and runs it whatever they say.
    println!("running 2 tests");
    parent();
    println!("test every_acknowledged_record_survives_sigkill ... ok");
    metrics_parent();
    println!("test acknowledged_metrics_survive_sigkill_once_synced ... ok");
    println!("\ntest result: ok. 2 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out");
}

fn path(dir: &Path) -> std::path::PathBuf {
    dir.join("telemetry.redb")
}

fn stream(n: usize) -> StreamKey {
    StreamKey::new(format!("device-{n}"), Kind::Log)
}

fn body(tag: &str) -> Bytes {
    Bytes::from(format!("{{\"tag\":{tag:?},\"msg\":\"a log line, {tag}\"}}"))
}

/// Appends batches of one to three records until killed, reporting `STREAM ID TAG` for each
/// acknowledged record.
fn child(dir: &Path, round: &str) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store = Arc::new(EmbeddedTelemetry::open(path(dir), Options::default()).unwrap());
        let out = Arc::new(Mutex::new(std::io::stdout()));
        let writers = (0..WRITERS).map(|w| {
            let store = store.clone();
            let out = out.clone();
            let round = round.to_string();
            tokio::spawn(async move {
                let s = w % STREAMS;
                for i in 0u64.. {
                    let tags: Vec<String> = (0..1 + i % 3)
                        .map(|j| format!("{round}-{w}-{i}-{j}"))
                        .collect();
                    let records = tags
                        .iter()
                        .map(|tag| NewRecord {
                            millis: 1_000 + i,
                            body: body(tag),
                        })
                        .collect();
                    let ids = store.append(&stream(s), records).await.unwrap();
                    let mut out = out.lock().unwrap();
                    for (id, tag) in ids.iter().zip(&tags) {
                        writeln!(out, "{s} {id} {tag}").unwrap();
                    }
                    out.flush().unwrap();
                }
            })
        });
        for writer in writers.collect::<Vec<_>>() {
            writer.await.unwrap();
        }
    });
}

fn parent() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut acked: BTreeMap<(usize, Id), String> = BTreeMap::new();
    for round in 0..KILLS {
        let kill_after = 1 + (round * 97) % 400;
        let mut child = Command::new(&exe)
            .args(["--child", dir.path().to_str().unwrap(), &round.to_string()])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut seen = Vec::new();
        for line in lines.by_ref() {
            seen.push(line.unwrap());
            if seen.len() == kill_after {
                break;
            }
        }
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        assert!(
            !status.success(),
            "round {round}: the child ended by itself: {status}"
        );
        // Whatever the child wrote before it died was acknowledged too.
        seen.extend(lines.map_while(Result::ok));
        for line in &seen {
            // A line cut off by the kill was never acknowledged.
            if let [s, id, tag] = line.split(' ').collect::<Vec<_>>()[..]
                && let (Ok(s), Ok(id)) = (s.parse(), id.parse::<Id>())
                && tag.split('-').count() == 4
            {
                acked.insert((s, id), tag.to_string());
            }
        }
        verify(dir.path(), round, &acked);
    }
}

fn verify(dir: &Path, round: usize, acked: &BTreeMap<(usize, Id), String>) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store = EmbeddedTelemetry::open(path(dir), Options::default())
            .unwrap_or_else(|e| panic!("round {round}: the store does not reopen: {e}"));
        for s in 0..STREAMS {
            let kept: BTreeMap<Id, Bytes> = store
                .read(&stream(s), &Range::default())
                .await
                .unwrap()
                .into_iter()
                .map(|r| (r.id, r.body))
                .collect();
            let mut last = None;
            for ((_, id), tag) in acked.range((s, Id::default())..(s + 1, Id::default())) {
                let got = kept
                    .get(id)
                    .unwrap_or_else(|| panic!("round {round}: acknowledged {s} {id} is missing"));
                assert_eq!(*got, body(tag), "round {round}: {s} {id} has another body");
                last = Some(*id);
            }
            // The reopened store takes appends again, after everything acknowledged.
            let probe = NewRecord {
                millis: 0,
                body: body("probe"),
            };
            let ids = store.append(&stream(s), vec![probe]).await.unwrap();
            assert!(
                last.is_none_or(|last| ids[0] > last),
                "round {round}: {s} went back to {} after {last:?}",
                ids[0]
            );
        }
        store.close();
    });
}

const METRICS: u64 = 50;

/// Appends [`METRICS`] metrics records one after another, says `appended`, then `synced` once
/// the writer synced after them, and waits to be killed.
fn metrics_child(dir: &Path) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store = EmbeddedTelemetry::open(path(dir), Options::default()).unwrap();
        let metrics = StreamKey::new("device-m", Kind::Metrics);
        for i in 0..METRICS {
            let records = vec![NewRecord {
                millis: 1_000 + i,
                body: body(&format!("m-{i}")),
            }];
            store.append(&metrics, records).await.unwrap();
        }
        let appended = store.synced_commits();
        println!("appended");
        while store.synced_commits() == appended {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        println!("synced");
        std::future::pending::<()>().await;
    });
}

fn metrics_parent() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(&exe)
        .args(["--metrics-child", dir.path().to_str().unwrap()])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // A child that never syncs is killed by this guard, and the test fails below.
    let pid = child.id();
    let guard = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_secs(60));
        let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
    });
    let synced = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok)
        .any(|line| line == "synced");
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    drop(guard);
    assert!(synced, "the metrics were never synced");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store = EmbeddedTelemetry::open(path(dir.path()), Options::default()).unwrap();
        let kept = store
            .read(
                &StreamKey::new("device-m", Kind::Metrics),
                &Range::default(),
            )
            .await
            .unwrap();
        let bodies: Vec<Bytes> = kept.into_iter().map(|r| r.body).collect();
        let expected: Vec<Bytes> = (0..METRICS).map(|i| body(&format!("m-{i}"))).collect();
        assert_eq!(bodies, expected);
        store.close();
    });
}
