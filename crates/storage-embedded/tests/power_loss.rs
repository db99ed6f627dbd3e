//! Power-loss test. SIGKILL leaves the page cache intact, so it cannot catch a missing fsync.
//! Here the store runs on a redb storage backend that keeps two images of the disk: what was
//! written, and what was synced. At a random write or sync the power "fails": that call and
//! everything after it fail, and the disk is left as it was at the last completed sync, dropping every
//! write not yet synced. The store is reopened from that image; every acknowledged write must be
//! there, and the store must be consistent.

use std::collections::BTreeSet;
use std::io;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use rand::{Rng, SeedableRng};
use redb::StorageBackend;
use storage::{Store, WriteOptions};
use storage_embedded::{EmbeddedStore, Options};

const OUTAGES: usize = 40;

#[derive(Debug, Default)]
struct Disk {
    /// What reads see: every write so far.
    written: Vec<u8>,
    /// What survives a power failure: the state at the last completed sync.
    synced: Vec<u8>,
    /// Writes and syncs left before the power fails (`None`: never).
    calls_left: Option<u32>,
    failed: bool,
}

#[derive(Debug, Clone)]
struct FlakyDisk(Arc<Mutex<Disk>>);

impl FlakyDisk {
    fn from_image(image: Vec<u8>, calls_left: Option<u32>) -> FlakyDisk {
        FlakyDisk(Arc::new(Mutex::new(Disk {
            written: image.clone(),
            synced: image,
            calls_left,
            failed: false,
        })))
    }

    fn surviving_image(&self) -> Vec<u8> {
        self.0.lock().unwrap().synced.clone()
    }

    fn disk(&self) -> io::Result<std::sync::MutexGuard<'_, Disk>> {
        let disk = self.0.lock().unwrap();
        if disk.failed {
            return Err(io::Error::other("power failure"));
        }
        Ok(disk)
    }

    /// The disk for a write or a sync, unless the power fails now.
    fn disk_for_change(&self) -> io::Result<std::sync::MutexGuard<'_, Disk>> {
        let mut disk = self.disk()?;
        if let Some(left) = disk.calls_left.as_mut() {
            if *left == 0 {
                disk.failed = true;
                return Err(io::Error::other("power failure"));
            }
            *left -= 1;
        }
        Ok(disk)
    }
}

impl StorageBackend for FlakyDisk {
    fn len(&self) -> io::Result<u64> {
        Ok(self.disk()?.written.len() as u64)
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        let disk = self.disk()?;
        let start = usize::try_from(offset).unwrap();
        let bytes = disk
            .written
            .get(start..start + out.len())
            .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "read past the end"))?;
        out.copy_from_slice(bytes);
        Ok(())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.disk()?
            .written
            .resize(usize::try_from(len).unwrap(), 0);
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        let mut disk = self.disk_for_change()?;
        disk.synced = disk.written.clone();
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        let mut disk = self.disk_for_change()?;
        let start = usize::try_from(offset).unwrap();
        if disk.written.len() < start + data.len() {
            disk.written.resize(start + data.len(), 0);
        }
        disk.written[start..start + data.len()].copy_from_slice(data);
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_write_survives_a_power_failure() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0xdead_beef);
    let mut image = Vec::new();
    let mut acked: BTreeSet<String> = BTreeSet::new();
    let mut outages_during_writes = 0;
    for outage in 0..OUTAGES {
        let disk = FlakyDisk::from_image(image.clone(), Some(rng.random_range(0..400)));
        // The power may fail while the store opens; then there is nothing to write.
        if let Ok(store) = EmbeddedStore::open_with_backend(disk.clone(), Options::default()) {
            let store = Arc::new(store);
            let writers = (0..8).map(|w| {
                let store = store.clone();
                tokio::spawn(async move {
                    let mut acked = Vec::new();
                    for i in 0.. {
                        let key = format!("/{outage}/{w}/{i}");
                        let value = Bytes::from(key.repeat(1 + i % 200));
                        let write =
                            store.create(Bytes::from(key.clone()), value, WriteOptions::default());
                        match write.await {
                            Ok(_) => acked.push(key),
                            Err(_) => return acked,
                        }
                    }
                    unreachable!()
                })
            });
            for writer in writers.collect::<Vec<_>>() {
                acked.extend(writer.await.unwrap());
            }
            outages_during_writes += 1;
            drop(store);
        }
        image = disk.surviving_image();

        let store = EmbeddedStore::open_with_backend(
            FlakyDisk::from_image(image.clone(), None),
            Options::default(),
        )
        .unwrap_or_else(|e| panic!("outage {outage}: the store does not reopen: {e}"));
        store
            .check_consistency()
            .unwrap_or_else(|e| panic!("outage {outage}: inconsistent after a power failure: {e}"));
        for key in &acked {
            let kv = store.get(key.as_bytes(), None).await.unwrap().kv;
            let kv = kv.unwrap_or_else(|| panic!("outage {outage}: acknowledged {key} was lost"));
            assert!(kv.value.starts_with(key.as_bytes()));
        }
        store.close();
    }
    assert!(
        outages_during_writes > OUTAGES / 2,
        "too few outages hit writes: {outages_during_writes}"
    );
    assert!(
        acked.len() > 100,
        "too few writes were acknowledged: {}",
        acked.len()
    );
}
