//! Crash test: a child process writes continuously and reports each acknowledged write; it is
//! killed with SIGKILL at a random point, many times over the same store; after each kill the
//! store is reopened and every acknowledged write must be there, and the store consistent.
//!
//! The child is this same binary, started with `--child DIR`.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use rand::{Rng, SeedableRng};
use storage::{StorageError, Store, WriteOptions};
use storage_embedded::{EmbeddedStore, Options};

const KILLS: usize = 30;
const WRITERS: usize = 8;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let [_, flag, dir, round] = &args[..]
        && flag == "--child"
    {
        child(Path::new(dir), round);
        return;
    }
    // `cargo test` passes harness flags; this binary has one test and runs it whatever they say.
    println!("running 1 test");
    parent();
    println!("test every_acknowledged_write_survives_sigkill ... ok");
    println!("\ntest result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out");
}

fn store_path(dir: &Path) -> std::path::PathBuf {
    dir.join("store.redb")
}

/// Writes until killed: creates of fresh keys, compare-and-swap increments of one counter per
/// writer, and deletes of some created keys. Each acknowledged write is reported on stdout.
fn child(dir: &Path, round: &str) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store = Arc::new(EmbeddedStore::open(store_path(dir), Options::default()).unwrap());
        let out = Arc::new(Mutex::new(std::io::stdout()));
        let report = move |line: String| {
            let mut out = out.lock().unwrap();
            writeln!(out, "{line}").unwrap();
            out.flush().unwrap();
        };
        let writers = (0..WRITERS).map(|w| {
            let store = store.clone();
            let report = report.clone();
            let round = round.to_string();
            tokio::spawn(async move {
                let none = WriteOptions::default();
                let counter = Bytes::from(format!("/counter/{w}"));
                for i in 0.. {
                    let key = format!("/data/{round}/{w}/{i}");
                    let value = Bytes::from(key.repeat(1 + i % 50));
                    let kv = store
                        .create(Bytes::from(key.clone()), value, none)
                        .await
                        .unwrap();
                    report(format!("put {key} {}", kv.mod_revision));
                    if i % 5 == 4 {
                        let victim = format!("/data/{round}/{w}/{}", i - 2);
                        let deleted = store
                            .delete(Bytes::from(victim.clone()), None)
                            .await
                            .unwrap();
                        report(format!("del {victim} {}", deleted.revision));
                    }
                    let current = store.get(&counter, None).await.unwrap().kv;
                    let (n, result) = match current {
                        None => (
                            1,
                            store.create(counter.clone(), Bytes::from("1"), none).await,
                        ),
                        Some(kv) => {
                            let n: u64 = std::str::from_utf8(&kv.value).unwrap().parse().unwrap();
                            let next = Bytes::from((n + 1).to_string());
                            (
                                n + 1,
                                store
                                    .update(counter.clone(), next, kv.mod_revision, none)
                                    .await,
                            )
                        }
                    };
                    match result {
                        Ok(kv) => report(format!("count {w} {n} {}", kv.mod_revision)),
                        Err(e) => panic!("{e}"),
                    }
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
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
    let mut present: BTreeMap<String, ()> = BTreeMap::new();
    let mut absent: Vec<String> = Vec::new();
    let mut counters: BTreeMap<String, u64> = BTreeMap::new();
    let mut max_revision = 0;
    for round in 0..KILLS {
        let kill_after = rng.random_range(1..400);
        let mut child = Command::new(&exe)
            .args(["--child", dir.path().to_str().unwrap(), &round.to_string()])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut acked = Vec::new();
        // Read until the chosen number of acknowledgements, then kill mid-stream.
        for line in lines.by_ref() {
            acked.push(line.unwrap());
            if acked.len() == kill_after {
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
        acked.extend(lines.map_while(Result::ok));
        for line in &acked {
            let parts: Vec<&str> = line.split(' ').collect();
            match parts[..] {
                ["put", key, rev] => {
                    present.insert(key.to_string(), ());
                    max_revision = max_revision.max(rev.parse().unwrap());
                }
                ["del", key, rev] => {
                    present.remove(key);
                    absent.push(key.to_string());
                    max_revision = max_revision.max(rev.parse().unwrap());
                }
                ["count", w, n, rev] => {
                    let n: u64 = n.parse().unwrap();
                    let entry = counters.entry(format!("/counter/{w}")).or_default();
                    *entry = (*entry).max(n);
                    max_revision = max_revision.max(rev.parse().unwrap());
                }
                // A line cut off by the kill was never acknowledged.
                _ => {}
            }
        }
        verify(
            dir.path(),
            round,
            &present,
            &absent,
            &counters,
            max_revision,
        );
    }
}

fn verify(
    dir: &Path,
    round: usize,
    present: &BTreeMap<String, ()>,
    absent: &[String],
    counters: &BTreeMap<String, u64>,
    max_revision: i64,
) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store = EmbeddedStore::open(store_path(dir), Options::default())
            .unwrap_or_else(|e| panic!("round {round}: the store does not reopen: {e}"));
        let revision = store
            .check_consistency()
            .unwrap_or_else(|e| panic!("round {round}: inconsistent after a kill: {e}"));
        assert!(
            revision >= max_revision,
            "round {round}: at {revision}, below acknowledged {max_revision}"
        );
        for key in present.keys() {
            let kv = store.get(key.as_bytes(), None).await.unwrap().kv;
            // The child deletes each key whose index is 2 modulo 5 a little later; that delete
            // may have been committed, unacknowledged, when the child was killed.
            let index: usize = key.rsplit('/').next().unwrap().parse().unwrap();
            if kv.is_none() && index % 5 == 2 {
                continue;
            }
            let kv = kv.unwrap_or_else(|| panic!("round {round}: acknowledged {key} is missing"));
            assert!(
                kv.value.starts_with(key.as_bytes()),
                "round {round}: {key} has a wrong value"
            );
        }
        for key in absent {
            let kv = store.get(key.as_bytes(), None).await.unwrap().kv;
            assert_eq!(kv, None, "round {round}: deleted {key} is back");
        }
        for (key, acked) in counters {
            let kv = store.get(key.as_bytes(), None).await.unwrap().kv.unwrap();
            let n: u64 = std::str::from_utf8(&kv.value).unwrap().parse().unwrap();
            assert!(
                n >= *acked,
                "round {round}: {key} is {n}, below acknowledged {acked}"
            );
        }
        // The reopened store takes writes again.
        let probe = Bytes::from(format!("/probe/{round}"));
        match store
            .create(probe, Bytes::new(), WriteOptions::default())
            .await
        {
            Ok(kv) => assert!(kv.mod_revision > revision),
            Err(e @ StorageError::AlreadyExists { .. }) => panic!("{e}"),
            Err(e) => panic!("round {round}: the reopened store refuses writes: {e}"),
        }
        store.close();
    });
}
