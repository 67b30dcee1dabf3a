//! Generating on every core and writing through the store's dataset writer. Chunks are dealt
//! round-robin to the threads, so the files depend only on the seed and the number of threads,
//! and every chunk's batches carry the chunk index as their sequence number, so the tables'
//! content MACs do not depend on the number of threads at all.

use crate::{ALL, Ctx, Result, SynthDatasetError};
use kura_store::{DatasetEntry, DatasetMeta, DatasetWriter, Home, StoreError, WriteOptions, WrittenPart};
use kura_synth::model::{IdCounts, POPULATION_CELLS};
use kura_synth::{Generator, SynthConfig};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};

/// Dense ids across chunks generated in parallel: chunk `i`'s ids are shifted by the id counts
/// of chunks `0..i`, known once those chunks are generated (not written). Each thread takes its
/// chunks in increasing order, so the lowest uncounted chunk is always being generated and the
/// wait cannot deadlock.
struct Offsets {
    state: Mutex<OffsetState>,
    ready: Condvar,
}

struct OffsetState {
    counts: Vec<Option<IdCounts>>,
    /// prefix[i] = sum of counts[0..i], known for i ≤ prefix.len() - 1.
    prefix: Vec<IdCounts>,
}

const FAILED_ELSEWHERE: &str = "another writer thread failed";

fn failed_elsewhere() -> SynthDatasetError {
    StoreError::Corrupt { what: "dataset write".into(), reason: FAILED_ELSEWHERE.into() }.into()
}

fn poisoned() -> SynthDatasetError {
    StoreError::Corrupt { what: "id offsets".into(), reason: "a writer thread panicked".into() }.into()
}

impl Offsets {
    fn new(chunks: u64) -> Self {
        Self {
            state: Mutex::new(OffsetState { counts: vec![None; chunks as usize], prefix: vec![IdCounts::default()] }),
            ready: Condvar::new(),
        }
    }

    /// Wakes every waiter (under the lock, so no wake-up is lost).
    fn wake_all(&self) {
        let _guard = self.state.lock();
        self.ready.notify_all();
    }

    fn offset_of(&self, i: u64, counts: IdCounts, failed: &AtomicBool) -> Result<IdCounts> {
        let i = i as usize;
        let mut s = self.state.lock().map_err(|_| poisoned())?;
        if let Some(slot) = s.counts.get_mut(i) {
            *slot = Some(counts);
        }
        loop {
            let k = s.prefix.len() - 1;
            match s.counts.get(k).copied().flatten() {
                Some(c) => {
                    let mut next = s.prefix[k];
                    next.add(&c);
                    s.prefix.push(next);
                }
                None => break,
            }
        }
        self.ready.notify_all();
        while s.prefix.len() <= i {
            if failed.load(Ordering::Relaxed) {
                return Err(failed_elsewhere());
            }
            s = self.ready.wait(s).map_err(|_| poisoned())?;
        }
        Ok(s.prefix[i])
    }
}

struct Shared<'a> {
    generator: &'a Generator,
    writer: &'a DatasetWriter<'a>,
    threads: usize,
    failed: AtomicBool,
    offsets: Offsets,
    progress: &'a (dyn Fn(u64) + Sync),
}

/// What one thread wrote and the population of the chunks it generated.
struct ThreadOutput {
    part: WrittenPart,
    population: Vec<u32>,
}

impl Shared<'_> {
    fn run(&self, thread: usize) -> Result<ThreadOutput> {
        // If this thread unwinds, the others must not wait for its chunks forever.
        struct FailOnUnwind<'a, 'b>(&'a Shared<'b>);
        impl Drop for FailOnUnwind<'_, '_> {
            fn drop(&mut self) {
                if std::thread::panicking() {
                    self.0.failed.store(true, Ordering::Relaxed);
                    self.0.offsets.wake_all();
                }
            }
        }
        let _guard = FailOnUnwind(self);
        let result = self.generate(thread);
        if result.is_err() {
            self.failed.store(true, Ordering::Relaxed);
            self.offsets.wake_all();
        }
        result
    }

    fn generate(&self, thread: usize) -> Result<ThreadOutput> {
        let mut part = self.writer.part(thread)?;
        let ctx = Ctx { world: self.generator.world(), population: &[] };
        let mut population = vec![0; POPULATION_CELLS];
        for i in (thread as u64..self.generator.chunk_count()).step_by(self.threads) {
            if self.failed.load(Ordering::Relaxed) {
                return Err(failed_elsewhere());
            }
            let mut chunk = self.generator.generate_chunk(i);
            let offset = self.offsets.offset_of(i, chunk.id_counts, &self.failed)?;
            chunk.rebase(&offset);
            for t in ALL.iter().filter(|t| !t.is_master()) {
                if let Some(batch) = t.chunk_batch(&chunk, &ctx)? {
                    part.write(t.spec().name, i, &batch)?;
                }
            }
            for (acc, n) in population.iter_mut().zip(&chunk.population) {
                *acc += n;
            }
            (self.progress)(chunk.persons);
        }
        Ok(ThreadOutput { part: part.finish()?, population })
    }
}

/// Generates a synthetic population and writes it as an encrypted dataset of the standard
/// tables, replacing any previous generation of the same dataset (whose keys are destroyed).
/// `progress` is called with the number of persons finished by each chunk. On any failure the
/// catalogue keeps the previous generation and the new one's files and keys are removed.
pub fn write_synthetic(home: &Home, synth: SynthConfig, opts: &WriteOptions, progress: &(dyn Fn(u64) + Sync)) -> Result<DatasetEntry> {
    for t in ALL {
        t.check().map_err(|reason| StoreError::Schema { table: t.spec().name.to_string(), reason })?;
    }
    // A configuration the generator refuses fails before anything changes.
    let generator = Generator::new(synth.clone(), home.platform_pseudonym_key()?)?;
    let specs: Vec<_> = ALL.iter().map(|t| t.spec()).collect();
    let writer = DatasetWriter::begin(home, &specs, opts)?;
    let threads = opts.threads.max(1);
    let shared = Shared {
        generator: &generator,
        writer: &writer,
        threads,
        failed: AtomicBool::new(false),
        offsets: Offsets::new(generator.chunk_count()),
        progress,
    };
    let results: Vec<Result<ThreadOutput>> = std::thread::scope(|s| {
        let sh = &shared;
        let handles: Vec<_> = (0..threads).map(|i| s.spawn(move || sh.run(i))).collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|payload| {
                    let what = payload.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| payload.downcast_ref::<String>().cloned());
                    let reason = format!("panicked: {}", what.unwrap_or_else(|| "(no message)".into()));
                    Err(StoreError::Corrupt { what: "writer thread".into(), reason }.into())
                })
            })
            .collect()
    });
    let mut parts = Vec::new();
    let mut population = vec![0u32; POPULATION_CELLS];
    let mut errors = Vec::new();
    for r in results {
        match r {
            Ok(o) => {
                for (acc, n) in population.iter_mut().zip(&o.population) {
                    *acc += n;
                }
                parts.push(o.part);
            }
            Err(e) => errors.push(e),
        }
    }
    // The error worth reporting is the cause, not another thread's "stopped because one failed".
    let cause =
        |e: &SynthDatasetError| !matches!(e, SynthDatasetError::Store(StoreError::Corrupt { reason, .. }) if reason == FAILED_ELSEWHERE);
    if let Some(i) = errors.iter().position(cause).or((!errors.is_empty()).then_some(0)) {
        return Err(errors.swap_remove(i)); // dropping `writer` removes the new generation
    }

    // Code masters and the population, written once the chunks are counted.
    let ctx = Ctx { world: generator.world(), population: &population };
    let mut masters = writer.part(threads)?;
    for t in ALL.iter().filter(|t| t.is_master()) {
        if let Some(batch) = t.master_batch(&ctx)? {
            masters.write(t.spec().name, 0, &batch)?;
        }
    }
    parts.push(masters.finish()?);

    let last = synth.start.plus(synth.months as i32 - 1);
    let meta = DatasetMeta {
        title_ja: "合成NDB（医科・DPC・調剤レセプト、特定健診）と介護DB".into(),
        title_en: "Synthetic NDB (medical, DPC and pharmacy receipts; specific health checkups) with care DB".into(),
        description_ja: "日本の人口構成と疫学に合わせて生成した合成データ。氏名・被保険者番号は平文で保存せず、ハッシュID（ID1/ID2/ID4/ID5）のみを含む。".into(),
        description_en: "Synthetic data generated to match Japan's population structure and epidemiology. Names and insurance numbers are never stored; only hashed IDs (ID1/ID2/ID4/ID5).".into(),
        synthetic: true,
        period_from: synth.start.yyyymm(),
        period_to: last.yyyymm(),
        persons: synth.persons,
        seed: synth.seed,
    };
    Ok(writer.commit(meta, parts)?)
}
