//! `faultline import FILE...`: archives (gzip NDJSON of stored records, as retention writes
//! them under `[retention] archive_dir`) back into the configured store, idempotent by
//! record id.
//!
//! Every file is read and checked in full before anything is written, so a truncated or
//! corrupt archive stops the import with its file and line and nothing of any file stored.
//! Then each file is written in batches, records keeping their ids, timestamps, `received_at`
//! and issue ids. PostgreSQL skips ids it has (`ON CONFLICT` on the key); the file store
//! remembers only its most recent ids, so for it the import first reads the ids already
//! stored within the file's time range and skips those: importing twice stores nothing twice.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use faultline_schema::{Record, Timestamp, Uuid};
use faultline_store::{ArchiveReader, ArchiveSummary, Query, RecordStore, check_archive};

use super::StoreArgs;

/// `faultline import` flags.
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// Where the config and the store are (a file store must not be open in a running
    /// server: its directory is locked).
    #[command(flatten)]
    pub stores: StoreArgs,
    /// Records per write.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub batch: u32,
    /// Archive files (`<day>/<source>.ndjson.gz`, or plain NDJSON of stored records).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

/// What one import did.
#[derive(Debug, Default, Clone, Copy)]
struct Imported {
    records: u64,
    written: u64,
    already: u64,
}

pub(crate) async fn import(args: ImportArgs) -> anyhow::Result<()> {
    let env = |k: &str| std::env::var(k).ok();
    let mut config = args.stores.load(&env)?;
    // An import deletes nothing: retention is the server's, whose next pass deletes (and
    // archives again) what is older than `[storage] retention`.
    config.storage.retention =
        faultline_schema::HumanDuration(std::time::Duration::from_secs(36_500 * 86_400));
    config.storage.retention_bytes = 0;
    config.retention.archive_dir = None;

    // Every file whole and readable before anything is written.
    let mut checked = Vec::with_capacity(args.files.len());
    for path in &args.files {
        let p = path.clone();
        let summary = tokio::task::spawn_blocking(move || check_archive(&p))
            .await
            .context("archive check task failed")??;
        checked.push((path.clone(), summary));
    }
    let total: u64 = checked.iter().map(|(_, s)| s.records).sum();
    eprintln!(
        "faultline: {} file(s), {total} records, all readable",
        checked.len()
    );

    let (store, postgres) = crate::store::open_records(&config).await?;
    // Only the file store forgets ids (beyond `dedup_ids`): look them up first.
    let look_up_ids = postgres.is_none();
    let mut sum = Imported::default();
    let result = async {
        for (path, summary) in &checked {
            let one = import_file(
                store.as_ref(),
                path,
                summary,
                args.batch as usize,
                look_up_ids,
            )
            .await
            .with_context(|| format!("importing {}", path.display()))?;
            println!(
                "{}: {} records, {} imported, {} already stored",
                path.display(),
                one.records,
                one.written,
                one.already
            );
            sum.records += one.records;
            sum.written += one.written;
            sum.already += one.already;
        }
        anyhow::Ok(())
    }
    .await;
    let spooled = store.health().spool.map_or(0, |s| s.batches);
    store.shutdown().await.context("store shutdown failed")?;
    result?;
    println!(
        "imported {} of {} records from {} file(s); {} were already stored",
        sum.written,
        sum.records,
        checked.len(),
        sum.already
    );
    if spooled > 0 {
        eprintln!(
            "faultline: PostgreSQL was not reachable: {spooled} batch(es) wait in {} and reach \
             it when a server (or another import) runs with this data dir",
            config.data_dir.join("spool").display()
        );
    }
    Ok(())
}

async fn import_file(
    store: &dyn RecordStore,
    path: &Path,
    summary: &ArchiveSummary,
    batch: usize,
    look_up_ids: bool,
) -> anyhow::Result<Imported> {
    let mut out = Imported {
        records: summary.records,
        ..Imported::default()
    };
    let (Some(min), Some(max)) = (summary.min_ts, summary.max_ts) else {
        return Ok(out);
    };
    let mut known: HashSet<Uuid> = HashSet::new();
    if look_up_ids {
        let range = Query {
            since: Some(min),
            until: Some(Timestamp::from_unix_millis(max.unix_millis() + 1)),
            ..Query::default()
        };
        known = store
            .scan(range, usize::MAX)
            .await?
            .into_iter()
            .filter_map(|r| r.id)
            .collect();
    }
    let (batches, mut receive) = tokio::sync::mpsc::channel::<Vec<Record>>(2);
    let reader = {
        let path = path.to_path_buf();
        tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
            let mut pending = Vec::with_capacity(batch);
            for record in ArchiveReader::open(&path)? {
                pending.push(record?);
                if pending.len() == batch
                    && batches
                        .blocking_send(std::mem::replace(&mut pending, Vec::with_capacity(batch)))
                        .is_err()
                {
                    return Ok(());
                }
            }
            if !pending.is_empty() {
                let _ = batches.blocking_send(pending);
            }
            Ok(())
        })
    };
    while let Some(mut records) = receive.recv().await {
        if look_up_ids {
            let before = records.len();
            // `insert` also drops a repeat within the archive itself.
            records.retain(|r| r.id.is_some_and(|id| known.insert(id)));
            out.already += (before - records.len()) as u64;
        }
        if records.is_empty() {
            continue;
        }
        let receipt = store.write(records).await?;
        out.written += receipt.written as u64;
        out.already += receipt.duplicates as u64;
    }
    reader.await.context("archive read task failed")??;
    if out.written + out.already != out.records {
        bail!(
            "{} changed while it was imported: {} records checked, {} read",
            path.display(),
            out.records,
            out.written + out.already
        );
    }
    Ok(out)
}
