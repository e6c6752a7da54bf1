//! A full disk under a SQLite store: writes fail with a storage error that says so, and the
//! store recovers by itself once space returns (no restart).

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;
use wavegate_store::{Change, Kind, Put, SqlStore, Store, StoreError};

struct Tmpfs(std::path::PathBuf);

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn put(key: &str, n: usize) -> Put {
    Put {
        kind: Kind::Flag,
        key: key.into(),
        spec: json!({"variants": {"on": true}, "default": "on", "description": "x".repeat(n)}),
        archived: false,
        expected_version: None,
        action: None,
        details: json!({}),
    }
}

fn change() -> Change {
    Change { actor: "t".into(), via: None, reason: None, at: chrono::Utc::now() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_fails_writes_honestly_and_recovery_needs_no_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("small");
    std::fs::create_dir(&mnt).unwrap();
    let ok = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=4m", "tmpfs"])
        .arg(&mnt)
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "this test mounts a small tmpfs (CI runs as root)");
    let _guard = Tmpfs(mnt.clone());
    let store = SqlStore::open(mnt.join("w.db").to_str().unwrap()).await.unwrap();
    // Leave a little room, then fill it.
    let filler = mnt.join("filler");
    let free = 4 * 1024 * 1024 - dir_size(&mnt);
    std::fs::write(&filler, vec![0u8; (free as usize).saturating_sub(256 * 1024)]).unwrap();
    let mut err = None;
    for i in 0..10_000 {
        if let Err(e) = store.apply(&[put(&format!("f{i}"), 4000)], &change()).await {
            err = Some(e);
            break;
        }
    }
    let err = err.expect("the disk filled up");
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert!(err.to_string().contains("disk is full"), "{err}");
    let probe = store.probe().await.unwrap_err();
    assert!(probe.to_string().contains("disk is full"), "the probe sees it too: {probe}");
    // Writes keep failing while the disk is full (each leaves its connection behind).
    for i in 0..50 {
        let e = store.apply(&[put(&format!("g{i}"), 4000)], &change()).await.unwrap_err();
        assert!(matches!(e, StoreError::Unavailable(_)), "{e:?}");
    }
    // Space returns: writes work again within seconds, on the same store.
    std::fs::remove_file(&filler).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match store.apply(&[put("after", 10)], &change()).await {
            Ok(_) => break,
            Err(e) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                let _ = e;
            }
            Err(e) => panic!("still failing 10 s after space returned: {e}"),
        }
    }
    assert!(store.get(Kind::Flag, "after").await.unwrap().is_some());
    store.probe().await.unwrap();
    let (_, broken) = wavegate_store::conformance::verify_audit_chain(&store).await.unwrap();
    assert_eq!(broken, None);
}

fn dir_size(p: &std::path::Path) -> u64 {
    std::fs::read_dir(p).unwrap().map(|e| e.unwrap().metadata().unwrap().len()).sum()
}
