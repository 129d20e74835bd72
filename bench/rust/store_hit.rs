//! Cost of one fresh hit in the in-process store (no Python): key building excluded, then
//! included. `cargo run --release --example store_hit`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use _core::core::clock::Clock;
use _core::core::entry::EntryMeta;
use _core::core::key::{Key, KeyBuilder};
use _core::core::store::{Lookup, RouteLabels, Store, StoreConfig, Tags};

fn key(i: usize) -> Key {
    let mut kb = KeyBuilder::new();
    kb.str("oxicache")
        .str("default")
        .str("app.items")
        .str("GET")
        .str("http");
    kb.bytes(b"127.0.0.1:8000")
        .bytes(b"/items")
        .bytes(format!("page={i}").as_bytes());
    kb.list(0);
    kb.finish()
}

fn main() {
    let store: Store<Vec<u8>> = Store::new(StoreConfig::default(), Arc::new(Clock::default()));
    let now = store.clock().now();
    let keys: Vec<Key> = (0..1000).map(key).collect();
    for k in &keys {
        let meta = EntryMeta {
            status: 200,
            stored_at: now,
            ttl: 3600.0,
            stale_while_revalidate: 0.0,
            stale_if_error: 0.0,
            etag: String::new(),
        };
        let tags = Tags {
            labels: Arc::new(RouteLabels {
                namespace: "default".into(),
                route: "app.items".into(),
            }),
            path: 0,
            user: None,
        };
        if store.insert(k, meta, vec![0u8; 2200], 2200, tags).is_err() {
            eprintln!("insert refused");
            return;
        }
    }
    store.run_pending_tasks();
    let rounds = 2_000_000;
    let started = Instant::now();
    let mut hits = 0usize;
    for i in 0..rounds {
        if let Lookup::Fresh(e) = store.get(black_box(&keys[i % keys.len()])) {
            hits += black_box(e.payload.len()) / 2200;
        }
    }
    let lookup_ns = started.elapsed().as_nanos() as f64 / rounds as f64;
    let started = Instant::now();
    for i in 0..rounds / 4 {
        let k = key(black_box(i % keys.len()));
        if let Lookup::Fresh(e) = store.get(&k) {
            hits += black_box(e.payload.len()) / 2200;
        }
    }
    let keyed_ns = started.elapsed().as_nanos() as f64 / (rounds / 4) as f64;
    println!(
        "store get (fresh hit): {lookup_ns:.0} ns; key build + get: {keyed_ns:.0} ns; hits {hits}"
    );
}
