//! `kura_evidence`: all the evidence of one aggregate node in one pass over its rows
//! (issue 17 §2 and "Performance", issue 22 §5–§7; HIC-IO2).
//!
//! The lineage rewrite ([`crate::lineage`]) used to add about ten aggregates per aggregate of
//! the researcher's query — distinct counts of persons and of each unit kind, the records
//! without a person key, CASE branches, per-person contributions and the person set itself —
//! each with a hash table of its own, most of them DataFusion's per-group slow path. This one
//! aggregate replaces them all: per group it keeps **one** ascending list of the persons seen,
//! where each person carries a bit mask of the researcher's aggregates (and CASE branches) whose
//! rows they are behind, plus that person's sum for each aggregate that needs contributions;
//! and one such list per unit kind. Every evidence value is read off these lists at the end:
//!
//! | evidence of aggregate *i* | from |
//! |---|---|
//! | distinct persons (per person column of a join) | persons whose mask has bit *i* |
//! | records without a person key | a counter per aggregate |
//! | distinct institutions, pharmacies, insurers | units whose mask has bit *i* |
//! | CASE branch *b* | persons whose mask has the branch's bit |
//! | largest and second contributions, total | the persons' sums (records without a key pooled as one contributor) |
//! | the person set (differencing memory) | persons whose mask has bit *i*, sorted |
//! | the row's persons | every person of the group |
//!
//! The extract's rows come clustered by the project's pseudonym (a person's rows together) in
//! a keyed order of persons, so a hash table per group would cost a cache miss per person.
//! Instead the rows' keys are gathered per column (about a million at a time; a key its group
//! is already waiting with is folded into that one), sorted by group and key, and merged into
//! each group's ascending list: sequential memory access, and the person sets come out sorted.
//!
//! Arguments, in order: the `persons` person columns, the `units` unit columns (all Int64),
//! then per aggregate its condition (Boolean: the row contributes to it), one Boolean per CASE
//! branch, and its value (where contributions are kept). The result per group is a binary
//! value [`decode`] reads.

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BinaryArray, BinaryBuilder, BooleanArray, Int64Array};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Float64Type};
use datafusion::common::ScalarValue;
use datafusion::error::DataFusionError;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{Accumulator, AggregateUDFImpl, EmitTo, GroupsAccumulator, Signature, Volatility};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

/// The aggregate's name (not registered: only the rewrite builds it).
pub const NAME: &str = "kura_evidence";

/// What one researcher's aggregate needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AggShape {
    /// CASE branches with evidence of their own.
    pub branches: usize,
    /// Whether per-person contributions are kept (sums, means).
    pub contributions: bool,
}

/// The arguments' layout.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Shape {
    /// Person columns (one per side of a join); the first gives the sets and contributions.
    pub persons: usize,
    /// Unit columns (institution, pharmacy, insurer: those present).
    pub units: usize,
    /// The researcher's aggregates.
    pub aggs: Vec<AggShape>,
}

/// At most this many aggregates and CASE branches share one node's masks.
pub const MAX_BITS: usize = 64;

/// Distinct institutions, pharmacies and insurers are counted exactly up to this many per
/// aggregate of a group; a count of `UNIT_CAP` means "at least this many". The rule they serve
/// (HIC-IO2's 1–2 institutions, issue 22 §7) only asks whether a cell has fewer than its
/// threshold, which a policy may set no higher than this
/// ([`kura_disclosure::policy::MAX_UNITS_THRESHOLD`]). Counting further would keep every
/// institution of every cell, a large share of the evidence query's work, for a number no rule
/// reads.
pub const UNIT_CAP: u64 = kura_disclosure::policy::MAX_UNITS_THRESHOLD;

impl Shape {
    /// Mask bits in use: one per aggregate, then one per branch.
    pub fn bits(&self) -> usize {
        self.aggs.len() + self.aggs.iter().map(|a| a.branches).sum::<usize>()
    }

    /// Aggregates that keep contributions.
    fn sums(&self) -> usize {
        self.aggs.iter().filter(|a| a.contributions).count()
    }

    /// The number of arguments.
    pub fn arguments(&self) -> usize {
        self.persons + self.units + self.aggs.iter().map(|a| 1 + a.branches + usize::from(a.contributions)).sum::<usize>()
    }
}

/// The evidence of one aggregate of one group.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AggEvidence {
    /// Distinct persons per person column.
    pub persons: Vec<u64>,
    /// Records without a person key.
    pub unknown: u64,
    /// Distinct units per unit column.
    pub units: Vec<u64>,
    /// Distinct persons per CASE branch.
    pub branches: Vec<u64>,
    /// (total, largest, second) of the absolute per-person sums.
    pub contributions: Option<(f64, f64, f64)>,
    /// The persons (first person column), sorted.
    pub set: Vec<u64>,
}

/// The evidence of one group: per aggregate, and the group's own persons per person column.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroupEvidence {
    /// Per aggregate.
    pub aggs: Vec<AggEvidence>,
    /// Distinct persons of the whole group, per person column.
    pub row_persons: Vec<u64>,
}

/// Hashes a keyed 64-bit hash with one multiplication (Fibonacci hashing: a bijection). Only
/// for keys nobody can choose (the hidden columns' HMAC values).
#[derive(Default, Clone, Copy)]
pub struct KeyHasher(u64);

/// [`KeyHasher`] for `HashMap`s of person keys.
pub type KeyBuild = BuildHasherDefault<KeyHasher>;

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_i64(&mut self, v: i64) {
        self.0 = (v as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// One column's keys in one group, ascending (as unsigned numbers, the order of the person
/// sets), each with its mask and — for the first person column — its `k` sums.
#[derive(Debug, Default, Clone)]
struct Keys {
    keys: Vec<u64>,
    masks: Vec<u64>,
    sums: Vec<f64>,
}

impl Keys {
    fn count(&self, bit: u64) -> u64 {
        self.masks.iter().filter(|m| *m & bit != 0).count() as u64
    }

    /// Appends `key` (not below the last), or adds to it where it is the last.
    fn push(&mut self, key: u64, mask: u64, sums: &[f64]) {
        if self.keys.last() == Some(&key) {
            if let Some(m) = self.masks.last_mut() {
                *m |= mask;
            }
            if !sums.is_empty() {
                let at = self.sums.len().saturating_sub(sums.len());
                for (s, v) in self.sums.get_mut(at..).unwrap_or(&mut []).iter_mut().zip(sums) {
                    *s += v;
                }
            }
        } else {
            self.keys.push(key);
            self.masks.push(mask);
            if !sums.is_empty() {
                self.sums.extend_from_slice(sums);
            }
        }
    }
}

/// One unit column's distinct units in one group, counted up to [`UNIT_CAP`] per aggregate.
#[derive(Debug, Default, Clone)]
struct Units {
    /// Each unit seen for an aggregate whose count is below the cap, with the mask of the
    /// aggregates it stands behind.
    seen: Vec<(u64, u64)>,
    /// Aggregates whose count has reached the cap.
    full: u64,
    /// Where the last unit was found: a person's rows lie together and name the same few
    /// institutions and one insurer, so the next row's unit is usually there.
    last: usize,
}

impl Units {
    /// Records `unit` behind the aggregates of `mask`; returns the entries added (1, 0, or
    /// fewer where units behind full aggregates only were forgotten).
    fn add(&mut self, unit: u64, mask: u64) -> isize {
        if mask & !self.full == 0 {
            return 0;
        }
        let at = match self.seen.get(self.last) {
            Some((u, _)) if *u == unit => Some(self.last),
            _ => self.seen.iter().position(|(u, _)| *u == unit),
        };
        let before = self.seen.len();
        match at.and_then(|i| self.seen.get_mut(i).map(|e| (i, e))) {
            Some((i, (_, m))) => {
                self.last = i;
                if *m | mask == *m {
                    return 0;
                }
                *m |= mask;
            }
            None => {
                self.last = self.seen.len();
                self.seen.push((unit, mask));
            }
        }
        self.saturate(mask);
        self.seen.len() as isize - before as isize
    }

    /// Marks the aggregates among `bits` that have reached the cap as full.
    fn saturate(&mut self, bits: u64) {
        let mut open = bits & !self.full;
        let mut full = 0;
        while open != 0 {
            let bit = open & open.wrapping_neg();
            open &= open - 1;
            if self.seen.iter().filter(|(_, m)| m & bit != 0).count() as u64 >= UNIT_CAP {
                full |= bit;
            }
        }
        self.fill(full);
    }

    /// Marks the aggregates of `full` as full, and forgets the units that stand only behind
    /// full ones (the counts still open stay exact).
    fn fill(&mut self, full: u64) {
        if full & !self.full != 0 {
            self.full |= full;
            let full = self.full;
            self.seen.retain(|(_, m)| m & !full != 0);
            self.last = 0;
        }
    }

    /// Distinct units behind `bit`, at most [`UNIT_CAP`].
    fn count(&self, bit: u64) -> u64 {
        if self.full & bit != 0 { UNIT_CAP } else { self.seen.iter().filter(|(_, m)| m & bit != 0).count() as u64 }
    }
}

/// Merges the ascending lists `old` and `incoming` into `new` (emptied first); a key met in
/// both is folded. `None` if `incoming` is not ascending (a malformed state).
fn merge_sorted<'s>(new: &mut Keys, old: &Keys, k: usize, incoming: impl Iterator<Item = (u64, u64, &'s [f64])>) -> Option<()> {
    new.keys.clear();
    new.masks.clear();
    new.sums.clear();
    let mut incoming = incoming.peekable();
    let mut last = None;
    let mut a = 0;
    loop {
        let from_old = match (old.keys.get(a), incoming.peek()) {
            (Some(x), Some(r)) => *x <= r.0,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => return Some(()),
        };
        if from_old {
            let (key, mask) = (old.keys.get(a).copied().unwrap_or(0), old.masks.get(a).copied().unwrap_or(0));
            new.push(key, mask, old.sums.get(a * k..a * k + k).unwrap_or(&[]));
            a += 1;
        } else if let Some((key, mask, sums)) = incoming.next() {
            if last.is_some_and(|l| key < l) {
                return None;
            }
            last = Some(key);
            new.push(key, mask, sums);
        }
    }
}

/// One group's persons and counters (its units are kept apart, [`EvidenceGroups::units`]).
#[derive(Debug, Clone)]
struct Group {
    /// Per person column.
    tables: Vec<Keys>,
    /// Records without a person key, per aggregate.
    unknown: Vec<u64>,
    /// Their pooled contribution, per contributions aggregate.
    unknown_sum: Vec<f64>,
}

impl Group {
    fn new(shape: &Shape) -> Group {
        Group { tables: vec![Keys::default(); shape.persons], unknown: vec![0; shape.aggs.len()], unknown_sum: vec![0.0; shape.sums()] }
    }

    fn entries(&self) -> usize {
        self.tables.iter().map(|k| k.keys.len()).sum()
    }
}

/// A row's key waiting to be sorted into its group: persons arrive in no order (the extract
/// orders them by a keyed hash), so instead of a hash table per group — a cache miss per row — keys are
/// gathered and sorted in bulk, then merged into each group's ascending keys.
#[derive(Debug, Clone, Copy)]
struct Pending {
    group: u32,
    /// Its sums' place in the buffer's values (`at × k`).
    at: u32,
    key: u64,
    mask: u64,
}

/// The keys of one column waiting, with their sums (`k` per key, first person column only).
#[derive(Debug, Default)]
struct Buffer {
    rows: Vec<Pending>,
    values: Vec<f64>,
}

/// Keys gathered per column before they are sorted into the groups.
const FLUSH_AT: usize = 1 << 20;

fn internal(what: &str) -> DataFusionError {
    DataFusionError::Internal(format!("{NAME}: {what}"))
}

/// The per-group accumulator.
#[derive(Debug)]
pub struct EvidenceGroups {
    shape: Shape,
    groups: Vec<Group>,
    /// Per group, per unit column (`group × units + column`): flat, so that a row reaches
    /// its group's units in one step.
    units: Vec<Units>,
    /// Per person column.
    buffers: Vec<Buffer>,
    /// Lists merged into, then swapped with a group's (no allocation per merge).
    scratch: Keys,
    /// The waiting keys sorted by group, and where each group's run starts: kept between
    /// flushes (no fresh pages per flush).
    sorted: Vec<Pending>,
    start: Vec<usize>,
    /// Entries held in the groups (for [`GroupsAccumulator::size`]).
    entries: usize,
    /// Units held (for [`GroupsAccumulator::size`]).
    unit_entries: isize,
    /// Per unit column, the last (group, unit, mask) added.
    last_unit: Vec<Option<(usize, u64, u64)>>,
}

impl EvidenceGroups {
    /// An empty accumulator for `shape`.
    pub fn new(shape: Shape) -> Self {
        let (tables, n_units) = (shape.persons, shape.units);
        EvidenceGroups {
            shape,
            groups: Vec::new(),
            units: Vec::new(),
            buffers: (0..tables).map(|_| Buffer::default()).collect(),
            scratch: Keys::default(),
            sorted: Vec::new(),
            start: Vec::new(),
            entries: 0,
            unit_entries: 0,
            last_unit: vec![None; n_units],
        }
    }

    fn grow(&mut self, total: usize) {
        if self.groups.len() < total {
            let shape = &self.shape;
            self.groups.resize_with(total, || Group::new(shape));
            self.units.resize_with(total * shape.units, Units::default);
        }
    }

    /// Sums kept per key of table `t`.
    fn k(&self, t: usize) -> usize {
        if t == 0 { self.shape.sums() } else { 0 }
    }

    /// Sorts table `t`'s waiting keys into their groups.
    fn flush(&mut self, t: usize) {
        let k = self.k(t);
        let Some(buf) = self.buffers.get_mut(t) else { return };
        let Buffer { mut rows, values } = std::mem::take(buf);
        if rows.is_empty() {
            return;
        }
        let at = |i: u32| values.get(i as usize * k..i as usize * k + k).unwrap_or(&[]);
        // By group first, counting (the groups are numbered densely), then each group's run by
        // key: small runs, sorted in the cache.
        let n_groups = self.groups.len();
        let mut start = std::mem::take(&mut self.start);
        start.clear();
        start.resize(n_groups + 1, 0);
        for r in &rows {
            if let Some(c) = start.get_mut(r.group as usize + 1) {
                *c += 1;
            }
        }
        for g in 0..n_groups {
            let before = start.get(g).copied().unwrap_or(0);
            if let Some(c) = start.get_mut(g + 1) {
                *c += before;
            }
        }
        let mut sorted = std::mem::take(&mut self.sorted);
        sorted.clear();
        sorted.resize(rows.len(), Pending { group: 0, at: 0, key: 0, mask: 0 });
        // `start[g]` walks to the end of group g's run, and is set back after.
        for r in &rows {
            if let Some(f) = start.get_mut(r.group as usize) {
                if let Some(slot) = sorted.get_mut(*f) {
                    *slot = *r;
                }
                *f += 1;
            }
        }
        for g in (1..=n_groups).rev() {
            let before = start.get(g - 1).copied().unwrap_or(0);
            if let Some(c) = start.get_mut(g) {
                *c = before;
            }
        }
        if let Some(c) = start.first_mut() {
            *c = 0;
        }
        rows.clear();
        let mut scratch = std::mem::take(&mut self.scratch);
        for g in 0..n_groups {
            let (from, to) = (start.get(g).copied().unwrap_or(0), start.get(g + 1).copied().unwrap_or(0));
            let Some(run) = sorted.get_mut(from..to) else { continue };
            if run.is_empty() {
                continue;
            }
            run.sort_unstable_by_key(|r| r.key);
            let run = &*run;
            let Some(table) = self.groups.get_mut(g).and_then(|g| g.tables.get_mut(t)) else { continue };
            // Merged into the scratch lists, which then change places with the group's: the
            // group's old lists are the next group's scratch (no allocation per group).
            merge_sorted(&mut scratch, table, k, run.iter().map(|r| (r.key, r.mask, at(r.at))));
            self.entries += scratch.keys.len() - table.keys.len();
            std::mem::swap(table, &mut scratch);
        }
        // The buffers' room is kept for the next keys.
        self.scratch = scratch;
        self.sorted = sorted;
        self.start = start;
        let mut values = values;
        values.clear();
        if let Some(buf) = self.buffers.get_mut(t) {
            *buf = Buffer { rows, values };
        }
    }

    fn flush_all(&mut self) {
        for t in 0..self.buffers.len() {
            self.flush(t);
        }
    }

    /// The groups `emit_to` names, with their units (`units` per group).
    fn take(&mut self, emit_to: EmitTo) -> (Vec<Group>, Vec<Units>) {
        self.flush_all();
        let taken = emit_to.take_needed(&mut self.groups);
        let units: Vec<Units> = match emit_to {
            EmitTo::All => std::mem::take(&mut self.units),
            EmitTo::First(n) => {
                let n = (n * self.shape.units).min(self.units.len());
                self.units.drain(..n).collect()
            }
        };
        self.unit_entries -= units.iter().map(|u| u.seen.len() as isize).sum::<isize>();
        // The groups left are numbered afresh.
        self.last_unit.iter_mut().for_each(|l| *l = None);
        self.entries = self.groups.iter().map(Group::entries).sum();
        (taken, units)
    }

    /// Group `g`'s units.
    fn units_of(units: &[Units], per: usize, g: usize) -> &[Units] {
        units.get(g * per..g * per + per).unwrap_or(&[])
    }

    /// Queues `key` of table `t` for `group`, with its sums. The same key for the same group
    /// as one of the two keys queued just before takes its mask and sums instead: a person's
    /// rows lie together in the extract ([`crate::extract`]), often in two groups taking
    /// turns (an age reached within the year), so most rows fold into a key in the cache
    /// rather than wait to be sorted.
    fn queue(&mut self, t: usize, group: usize, key: u64, mask: u64, sums: &[f64]) {
        let Some(buf) = self.buffers.get_mut(t) else { return };
        let n = buf.rows.len();
        let waiting = buf.rows.get_mut(n.saturating_sub(2)..).unwrap_or(&mut []);
        if let Some(p) = waiting.iter_mut().rev().find(|p| p.key == key && p.group as usize == group) {
            p.mask |= mask;
            let k = sums.len();
            let at = p.at as usize * k;
            for (s, v) in buf.values.get_mut(at..at + k).unwrap_or(&mut []).iter_mut().zip(sums) {
                *s += v;
            }
            return;
        }
        let at = if sums.is_empty() { 0 } else { (buf.values.len() / sums.len()) as u32 };
        buf.rows.push(Pending { group: group as u32, at, key, mask });
        buf.values.extend_from_slice(sums);
    }

    fn flush_full(&mut self) {
        for t in 0..self.buffers.len() {
            if self.buffers.get(t).is_some_and(|b| b.rows.len() >= FLUSH_AT) {
                self.flush(t);
            }
        }
    }
}

/// The columns of one batch, by role.
struct Columns<'a> {
    persons: Vec<&'a Int64Array>,
    units: Vec<&'a Int64Array>,
    /// Per aggregate: condition, branches, value.
    aggs: Vec<(&'a BooleanArray, Vec<&'a BooleanArray>, Option<ArrayRef>)>,
}

fn columns<'a>(shape: &Shape, values: &'a [ArrayRef]) -> datafusion::common::Result<Columns<'a>> {
    if values.len() != shape.arguments() {
        return Err(internal("wrong number of arguments"));
    }
    if shape.bits() > MAX_BITS {
        return Err(internal("more aggregates and branches than one mask holds"));
    }
    let mut it = values.iter();
    let mut int = || it.next().and_then(|a| a.as_any().downcast_ref::<Int64Array>()).ok_or_else(|| internal("a key column is not Int64"));
    let persons = (0..shape.persons).map(|_| int()).collect::<datafusion::common::Result<Vec<_>>>()?;
    let units = (0..shape.units).map(|_| int()).collect::<datafusion::common::Result<Vec<_>>>()?;
    let rest = values.get(shape.persons + shape.units..).unwrap_or(&[]);
    let mut it = rest.iter();
    let mut aggs = Vec::new();
    for a in &shape.aggs {
        let mut boolean =
            || it.next().and_then(|x| x.as_any().downcast_ref::<BooleanArray>()).ok_or_else(|| internal("a condition is not Boolean"));
        let cond = boolean()?;
        let branches = (0..a.branches).map(|_| boolean()).collect::<datafusion::common::Result<Vec<_>>>()?;
        let value = if a.contributions {
            let v = it.next().ok_or_else(|| internal("a value is missing"))?;
            Some(datafusion::arrow::compute::cast(v, &DataType::Float64)?)
        } else {
            None
        };
        aggs.push((cond, branches, value));
    }
    Ok(Columns { persons, units, aggs })
}

/// Sets `bit` in `masks[r]` for every row `r` where `a` holds and `masks[r]` has `within`
/// (all rows where `within` is 0).
fn set_bits(masks: &mut [u64], a: &BooleanArray, bit: u64, within: u64) {
    let set = match a.nulls() {
        Some(nulls) => a.values() & nulls.inner(),
        None => a.values().clone(),
    };
    if set.count_set_bits() == set.len() && within == 0 {
        for m in masks.iter_mut() {
            *m |= bit;
        }
        return;
    }
    for r in set.set_indices() {
        if let Some(m) = masks.get_mut(r)
            && (within == 0 || *m & within != 0)
        {
            *m |= bit;
        }
    }
}

fn holds(a: &BooleanArray, r: usize) -> bool {
    a.is_valid(r) && a.value(r)
}

fn key(a: &Int64Array, r: usize) -> Option<i64> {
    a.is_valid(r).then(|| a.value(r))
}

impl GroupsAccumulator for EvidenceGroups {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> datafusion::common::Result<()> {
        self.grow(total_num_groups);
        let cols = columns(&self.shape, values)?;
        let k = self.shape.sums();
        let n_aggs = self.shape.aggs.len();
        // Branch bits follow the aggregates' bits.
        let mut branch_bit = Vec::with_capacity(n_aggs);
        let mut next = n_aggs;
        for a in &self.shape.aggs {
            branch_bit.push(next);
            next += a.branches;
        }
        let values: Vec<Option<&datafusion::arrow::array::PrimitiveArray<Float64Type>>> =
            cols.aggs.iter().map(|(_, _, v)| v.as_ref().map(|v| v.as_primitive::<Float64Type>())).collect();
        let agg_bits = if n_aggs >= 64 { u64::MAX } else { (1u64 << n_aggs) - 1 };
        let n_units = self.shape.units;
        let mut sums = vec![0.0f64; k];
        // Each row's mask, a column at a time: the aggregates whose condition holds, and the
        // CASE branches that hold where their aggregate's condition does.
        let n = group_indices.len();
        let mut masks = vec![0u64; n];
        for (i, (cond, branches, _)) in cols.aggs.iter().enumerate() {
            set_bits(&mut masks, cond, 1 << i, 0);
            let first = branch_bit.get(i).copied().unwrap_or(0);
            for (b, branch) in branches.iter().enumerate() {
                set_bits(&mut masks, branch, 1 << (first + b), 1 << i);
            }
        }
        for (r, &g) in group_indices.iter().enumerate() {
            if opt_filter.is_some_and(|f| !holds(f, r)) {
                continue;
            }
            if g >= self.groups.len() {
                return Err(internal("a group index out of range"));
            }
            let mask = masks.get(r).copied().unwrap_or(0);
            // The row's contribution to each contributions aggregate it is behind.
            let mut c = 0;
            for (i, v) in values.iter().enumerate() {
                let Some(v) = v else { continue };
                if let Some(s) = sums.get_mut(c) {
                    *s = if mask & (1 << i) != 0 && v.is_valid(r) { v.value(r).abs() } else { 0.0 };
                }
                c += 1;
            }
            match cols.persons.first().and_then(|p| key(p, r)) {
                // Every row's person is kept (the row's persons), whichever aggregate it is behind.
                Some(person) => self.queue(0, g, person as u64, mask, &sums),
                None => {
                    let Some(group) = self.groups.get_mut(g) else { continue };
                    for (i, u) in group.unknown.iter_mut().enumerate() {
                        if mask & (1 << i) != 0 {
                            *u += 1;
                        }
                    }
                    for (u, v) in group.unknown_sum.iter_mut().zip(&sums) {
                        *u += v;
                    }
                }
            }
            for (p, col) in cols.persons.iter().enumerate().skip(1) {
                if let Some(person) = key(col, r) {
                    self.queue(p, g, person as u64, mask & agg_bits, &[]);
                }
            }
            if mask & agg_bits != 0 {
                let at = g * n_units;
                for (u, col) in cols.units.iter().enumerate() {
                    let Some(unit) = key(col, r) else { continue };
                    // The row before named the same unit for the same group with the same
                    // aggregates (a person's rows lie together): nothing to add.
                    let seen = (g, unit as u64, mask & agg_bits);
                    if let Some(last) = self.last_unit.get_mut(u) {
                        if *last == Some(seen) {
                            continue;
                        }
                        *last = Some(seen);
                    }
                    if let Some(units) = self.units.get_mut(at + u) {
                        self.unit_entries += units.add(unit as u64, mask & agg_bits);
                    }
                }
            }
        }
        self.flush_full();
        Ok(())
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> datafusion::common::Result<ArrayRef> {
        let (groups, units) = self.take(emit_to);
        let mut out = BinaryBuilder::new();
        let mut buf = Vec::new();
        for (i, g) in groups.iter().enumerate() {
            buf.clear();
            encode_result(&self.shape, g, Self::units_of(&units, self.shape.units, i), &mut buf);
            out.append_value(&buf);
        }
        Ok(Arc::new(out.finish()))
    }

    fn state(&mut self, emit_to: EmitTo) -> datafusion::common::Result<Vec<ArrayRef>> {
        let (groups, units) = self.take(emit_to);
        let mut out = BinaryBuilder::new();
        let mut buf = Vec::new();
        for (i, g) in groups.iter().enumerate() {
            buf.clear();
            encode_state(g, Self::units_of(&units, self.shape.units, i), &mut buf);
            out.append_value(&buf);
        }
        Ok(vec![Arc::new(out.finish())])
    }

    fn merge_batch(&mut self, values: &[ArrayRef], group_indices: &[usize], total_num_groups: usize) -> datafusion::common::Result<()> {
        self.grow(total_num_groups);
        let states = values.first().and_then(|a| a.as_any().downcast_ref::<BinaryArray>()).ok_or_else(|| internal("malformed state"))?;
        for (r, &g) in group_indices.iter().enumerate() {
            if states.is_null(r) {
                continue;
            }
            self.merge_state(g, states.value(r)).ok_or_else(|| internal("malformed state"))?;
        }
        self.flush_full();
        Ok(())
    }

    fn convert_to_state(&self, values: &[ArrayRef], opt_filter: Option<&BooleanArray>) -> datafusion::common::Result<Vec<ArrayRef>> {
        // Each row a group of its own (DataFusion skipping partial aggregation).
        let n = values.first().map_or(0, |a| a.len());
        let mut one = EvidenceGroups::new(self.shape.clone());
        one.update_batch(values, &(0..n).collect::<Vec<_>>(), opt_filter, n)?;
        one.state(EmitTo::All)
    }

    fn size(&self) -> usize {
        // Keys, masks and sums per entry; the waiting keys; the groups and their units.
        let waiting: usize = self.buffers.iter().map(|b| b.rows.capacity() * 24 + b.values.capacity() * 8).sum();
        let units = self.units.len() * std::mem::size_of::<Units>() + self.unit_entries.max(0) as usize * 16;
        self.entries * (16 + 8 * self.shape.sums())
            + waiting
            + self.sorted.capacity() * 24
            + units
            + self.groups.len() * std::mem::size_of::<Group>()
    }
}

fn put_u64(buf: &mut Vec<u8>, v: u64) {
    buf.extend_from_slice(&v.to_le_bytes());
}

fn put_f64(buf: &mut Vec<u8>, v: f64) {
    buf.extend_from_slice(&v.to_le_bytes());
}

/// A partial group as it moves between DataFusion's partial and final aggregation: per person
/// column its keys and masks, per unit column its full aggregates and units with masks, then
/// the first person column's sums, the unknown counters and their sums.
fn encode_state(g: &Group, units: &[Units], buf: &mut Vec<u8>) {
    for t in &g.tables {
        put_u64(buf, t.keys.len() as u64);
        for (k, m) in t.keys.iter().zip(&t.masks) {
            put_u64(buf, *k);
            put_u64(buf, *m);
        }
    }
    for u in units {
        put_u64(buf, u.full);
        put_u64(buf, u.seen.len() as u64);
        for (k, m) in &u.seen {
            put_u64(buf, *k);
            put_u64(buf, *m);
        }
    }
    let sums = g.tables.first().map_or(&[][..], |t| t.sums.as_slice());
    put_u64(buf, sums.len() as u64);
    for s in sums {
        put_f64(buf, *s);
    }
    for u in &g.unknown {
        put_u64(buf, *u);
    }
    for s in &g.unknown_sum {
        put_f64(buf, *s);
    }
}

/// Reads little-endian words.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn u64(&mut self) -> Option<u64> {
        let (head, rest) = self.0.split_first_chunk::<8>()?;
        self.0 = rest;
        Some(u64::from_le_bytes(*head))
    }
    fn f64(&mut self) -> Option<f64> {
        self.u64().map(f64::from_bits)
    }
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(head)
    }
    fn len(&mut self) -> Option<usize> {
        let n = usize::try_from(self.u64()?).ok()?;
        // A count that the rest cannot hold is malformed (no huge allocation).
        (n <= self.0.len()).then_some(n)
    }
}

impl EvidenceGroups {
    /// Merges a partial group's state (`bytes`) into group `g`: each of its lists is ascending,
    /// so it is merged with the group's directly (no waiting, no sort).
    fn merge_state(&mut self, g: usize, bytes: &[u8]) -> Option<()> {
        let k = self.shape.sums();
        let mut r = Reader(bytes);
        let mut tables: Vec<&[u8]> = Vec::with_capacity(self.buffers.len());
        for _ in 0..self.buffers.len() {
            let n = r.len()?;
            tables.push(r.take(n.checked_mul(16)?)?);
        }
        let per = self.shape.units;
        for u in 0..per {
            let full = r.u64()?;
            let n = r.len()?;
            let raw = r.take(n.checked_mul(16)?)?;
            let units = self.units.get_mut(g * per + u)?;
            let before = units.seen.len() as isize;
            units.fill(full);
            for e in raw.chunks_exact(16) {
                let (key, mask) = e.split_at(8);
                let word = |b: &[u8]| b.try_into().map(u64::from_le_bytes).unwrap_or(0);
                units.add(word(key), word(mask));
            }
            self.unit_entries += units.seen.len() as isize - before;
        }
        let n = r.len()?;
        if n != tables.first().map_or(0, |t| t.len() / 16) * k {
            return None;
        }
        let sums = r.take(n.checked_mul(8)?)?;
        let group = self.groups.get_mut(g)?;
        let unknown = (0..group.unknown.len()).map(|_| r.u64()).collect::<Option<Vec<_>>>()?;
        let unknown_sum = (0..group.unknown_sum.len()).map(|_| r.f64()).collect::<Option<Vec<_>>>()?;
        if !r.0.is_empty() {
            return None;
        }
        let mut values = Vec::with_capacity(n);
        for chunk in sums.chunks_exact(8) {
            values.push(f64::from_le_bytes(chunk.try_into().ok()?));
        }
        for (u, v) in group.unknown.iter_mut().zip(unknown) {
            *u += v;
        }
        for (u, v) in group.unknown_sum.iter_mut().zip(unknown_sum) {
            *u += v;
        }
        for (t, raw) in tables.into_iter().enumerate() {
            let kt = if t == 0 { k } else { 0 };
            let table = group.tables.get_mut(t)?;
            let entries = raw.chunks_exact(16).enumerate().map(|(i, e)| {
                let (key, mask) = e.split_at(8);
                let word = |b: &[u8]| b.try_into().map(u64::from_le_bytes).unwrap_or(0);
                (word(key), word(mask), values.get(i * kt..i * kt + kt).unwrap_or(&[]))
            });
            merge_sorted(&mut self.scratch, table, kt, entries)?;
            self.entries += self.scratch.keys.len();
            self.entries -= table.keys.len();
            std::mem::swap(table, &mut self.scratch);
        }
        Some(())
    }
}

/// A group's evidence: per aggregate its counts, contributions and set; then the row's persons.
fn encode_result(shape: &Shape, g: &Group, units: &[Units], buf: &mut Vec<u8>) {
    let k = shape.sums();
    let mut next_branch = shape.aggs.len();
    let mut c = 0;
    let none = Keys::default();
    let persons = g.tables.as_slice();
    let first = persons.first().unwrap_or(&none);
    for (i, a) in shape.aggs.iter().enumerate() {
        let bit = 1u64 << i;
        for t in persons {
            put_u64(buf, t.count(bit));
        }
        put_u64(buf, g.unknown.get(i).copied().unwrap_or(0));
        for t in units {
            put_u64(buf, t.count(bit));
        }
        for b in 0..a.branches {
            put_u64(buf, first.count(1u64 << (next_branch + b)));
        }
        next_branch += a.branches;
        if a.contributions {
            let (mut total, mut largest, mut second) = (0.0f64, 0.0f64, 0.0f64);
            let mut consider = |v: f64| {
                total += v;
                if v > largest {
                    second = largest;
                    largest = v;
                } else if v > second {
                    second = v;
                }
            };
            for (slot, m) in first.masks.iter().enumerate() {
                if m & bit != 0 {
                    consider(first.sums.get(slot * k + c).copied().unwrap_or(0.0));
                }
            }
            // Records without a person key may all be one person's: pooled as one contributor.
            if g.unknown.get(i).copied().unwrap_or(0) > 0 {
                consider(g.unknown_sum.get(c).copied().unwrap_or(0.0));
            }
            put_f64(buf, total);
            put_f64(buf, largest);
            put_f64(buf, second);
            c += 1;
        }
        // Ascending already: the keys are kept sorted.
        put_u64(buf, first.count(bit));
        for (key, m) in first.keys.iter().zip(&first.masks) {
            if m & bit != 0 {
                put_u64(buf, *key);
            }
        }
    }
    for t in persons {
        put_u64(buf, t.keys.len() as u64);
    }
}

/// Reads one group's result ([`EvidenceGroups::evaluate`]); `None` where it is malformed.
pub fn decode(shape: &Shape, bytes: &[u8]) -> Option<GroupEvidence> {
    let mut r = Reader(bytes);
    let mut aggs = Vec::with_capacity(shape.aggs.len());
    for a in &shape.aggs {
        let persons = (0..shape.persons).map(|_| r.u64()).collect::<Option<Vec<_>>>()?;
        let unknown = r.u64()?;
        let units = (0..shape.units).map(|_| r.u64()).collect::<Option<Vec<_>>>()?;
        let branches = (0..a.branches).map(|_| r.u64()).collect::<Option<Vec<_>>>()?;
        let contributions = if a.contributions { Some((r.f64()?, r.f64()?, r.f64()?)) } else { None };
        let n = r.len()?;
        let set = (0..n).map(|_| r.u64()).collect::<Option<Vec<_>>>()?;
        aggs.push(AggEvidence { persons, unknown, units, branches, contributions, set });
    }
    let row_persons = (0..shape.persons).map(|_| r.u64()).collect::<Option<Vec<_>>>()?;
    r.0.is_empty().then_some(GroupEvidence { aggs, row_persons })
}

/// The aggregate for one node.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct EvidenceUdaf {
    shape: Shape,
    signature: Signature,
}

impl EvidenceUdaf {
    /// The aggregate of a node whose arguments have `shape`'s layout.
    pub fn new(shape: Shape) -> Self {
        EvidenceUdaf { shape, signature: Signature::variadic_any(Volatility::Immutable) }
    }
}

impl AggregateUDFImpl for EvidenceUdaf {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> datafusion::common::Result<DataType> {
        Ok(DataType::Binary)
    }

    fn accumulator(&self, _acc_args: AccumulatorArgs) -> datafusion::common::Result<Box<dyn Accumulator>> {
        Ok(Box::new(Single(EvidenceGroups::new(self.shape.clone()))))
    }

    fn state_fields(&self, _args: StateFieldsArgs) -> datafusion::common::Result<Vec<FieldRef>> {
        Ok(vec![Arc::new(Field::new("evidence_state", DataType::Binary, true))])
    }

    fn groups_accumulator_supported(&self, _args: AccumulatorArgs) -> bool {
        true
    }

    fn create_groups_accumulator(&self, _args: AccumulatorArgs) -> datafusion::common::Result<Box<dyn GroupsAccumulator>> {
        Ok(Box::new(EvidenceGroups::new(self.shape.clone())))
    }
}

/// The same accumulator for an aggregate without GROUP BY: one group.
#[derive(Debug)]
struct Single(EvidenceGroups);

impl Single {
    fn one(&mut self) -> datafusion::common::Result<ScalarValue> {
        self.0.grow(1);
        let a = self.0.evaluate(EmitTo::All)?;
        ScalarValue::try_from_array(&a, 0)
    }
}

impl Accumulator for Single {
    fn update_batch(&mut self, values: &[ArrayRef]) -> datafusion::common::Result<()> {
        let n = values.first().map_or(0, |a| a.len());
        self.0.update_batch(values, &vec![0; n], None, 1)
    }

    fn evaluate(&mut self) -> datafusion::common::Result<ScalarValue> {
        self.one()
    }

    fn size(&self) -> usize {
        self.0.size()
    }

    fn state(&mut self) -> datafusion::common::Result<Vec<ScalarValue>> {
        self.0.grow(1);
        let s = self.0.state(EmitTo::All)?;
        s.iter().map(|a| ScalarValue::try_from_array(a, 0)).collect()
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> datafusion::common::Result<()> {
        let n = states.first().map_or(0, |a| a.len());
        self.0.merge_batch(states, &vec![0; n], 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::Float64Array;

    fn shape() -> Shape {
        Shape {
            persons: 1,
            units: 1,
            aggs: vec![AggShape { branches: 0, contributions: false }, AggShape { branches: 2, contributions: true }],
        }
    }

    /// Rows: (group, person, unit, cond0, cond1, branch a, branch b, value).
    type Row = (usize, Option<i64>, Option<i64>, bool, bool, bool, bool, Option<f64>);

    fn batch(rows: &[Row]) -> (Vec<ArrayRef>, Vec<usize>) {
        let col = |f: &dyn Fn(&Row) -> Option<i64>| Arc::new(rows.iter().map(f).collect::<Int64Array>()) as ArrayRef;
        let boolean = |f: &dyn Fn(&Row) -> bool| Arc::new(rows.iter().map(|r| Some(f(r))).collect::<BooleanArray>()) as ArrayRef;
        let values = vec![
            col(&|r| r.1),
            col(&|r| r.2),
            boolean(&|r| r.3),
            boolean(&|r| r.4),
            boolean(&|r| r.5),
            boolean(&|r| r.6),
            Arc::new(rows.iter().map(|r| r.7).collect::<Float64Array>()) as ArrayRef,
        ];
        (values, rows.iter().map(|r| r.0).collect())
    }

    fn evaluate(acc: &mut EvidenceGroups) -> Vec<GroupEvidence> {
        let out = acc.evaluate(EmitTo::All).unwrap();
        let out = out.as_any().downcast_ref::<BinaryArray>().unwrap();
        (0..out.len()).map(|i| decode(&shape(), out.value(i)).unwrap()).collect()
    }

    const ROWS: [Row; 7] = [
        (0, Some(5), Some(100), true, true, true, false, Some(10.0)),
        (0, Some(5), Some(101), true, true, true, false, Some(-4.0)),
        (0, Some(-3), Some(100), true, false, false, false, Some(99.0)),
        (0, None, None, true, true, false, true, Some(7.0)),
        (0, Some(8), None, false, true, false, true, Some(2.0)),
        (1, Some(5), Some(100), true, false, false, false, None),
        (1, Some(9), None, false, false, false, false, None),
    ];

    #[test]
    fn every_value_is_read_off_one_table() {
        let mut acc = EvidenceGroups::new(shape());
        let (values, groups) = batch(&ROWS);
        acc.update_batch(&values, &groups, None, 2).unwrap();
        let ev = evaluate(&mut acc);
        let g0 = ev.first().unwrap();
        let count = g0.aggs.first().unwrap();
        // Persons 5 and -3 behind the count (the null one is unknown), units 100 and 101.
        assert_eq!(count.persons, vec![2]);
        assert_eq!(count.unknown, 1);
        assert_eq!(count.units, vec![2]);
        let mut want = vec![5u64, (-3i64) as u64];
        want.sort_unstable();
        assert_eq!(count.set, want);
        let sum = g0.aggs.get(1).unwrap();
        // Person 5 (10 + 4), person 8 (2), and the unknown record (7) pooled.
        assert_eq!(sum.persons, vec![2]);
        assert_eq!(sum.branches, vec![1, 1]);
        assert_eq!(sum.contributions, Some((23.0, 14.0, 7.0)));
        assert_eq!(sum.units, vec![2]);
        // Every person of the group, whichever aggregate they are behind.
        assert_eq!(g0.row_persons, vec![3]);
        let g1 = ev.get(1).unwrap();
        assert_eq!(g1.aggs.first().unwrap().persons, vec![1]);
        assert_eq!(g1.row_persons, vec![2]);
        assert_eq!(g1.aggs.get(1).unwrap().contributions, Some((0.0, 0.0, 0.0)));
    }

    #[test]
    fn partial_states_merge_to_the_same_evidence() {
        let mut whole = EvidenceGroups::new(shape());
        let (values, groups) = batch(&ROWS);
        whole.update_batch(&values, &groups, None, 2).unwrap();
        let want = evaluate(&mut whole);
        // Every split of the rows into two partial aggregations, merged in a final one.
        for cut in 0..=ROWS.len() {
            let (a, b) = ROWS.split_at(cut);
            let mut fin = EvidenceGroups::new(shape());
            for part in [a, b] {
                let mut p = EvidenceGroups::new(shape());
                let (values, groups) = batch(part);
                p.update_batch(&values, &groups, None, 2).unwrap();
                let state = p.state(EmitTo::All).unwrap();
                fin.merge_batch(&state, &[0, 1], 2).unwrap();
            }
            assert_eq!(evaluate(&mut fin), want, "cut at {cut}");
        }
    }

    #[test]
    fn keys_sorted_in_one_flush_or_many_give_the_same_evidence() {
        let mut whole = EvidenceGroups::new(shape());
        let (values, groups) = batch(&ROWS);
        whole.update_batch(&values, &groups, None, 2).unwrap();
        let want = evaluate(&mut whole);
        // One row at a time, each sorted into the groups before the next (merging the waiting
        // keys with the kept ones, equal keys across flushes), in both orders.
        for reversed in [false, true] {
            let mut rows = ROWS.to_vec();
            if reversed {
                rows.reverse();
            }
            let mut acc = EvidenceGroups::new(shape());
            for row in &rows {
                let (values, groups) = batch(std::slice::from_ref(row));
                acc.update_batch(&values, &groups, None, 2).unwrap();
                acc.flush_all();
            }
            assert_eq!(evaluate(&mut acc), want, "reversed: {reversed}");
        }
    }

    /// Thousands of seeded random rows (many more than a waiting list holds before it is
    /// sorted in) give what the definition gives, computed plainly: with fewer institutions
    /// than [`UNIT_CAP`] (counted exactly) and with more (counted up to the cap).
    #[test]
    fn random_rows_match_the_plain_definition() {
        for n_units in [12, 40] {
            let mut seed = 0x2545_f491_4f6c_dd1du64;
            let mut next = move |n: u64| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed % n
            };
            let rows: Vec<Row> = (0..6000)
                .map(|_| {
                    let person = (next(20) != 0).then(|| next(900) as i64 - 450);
                    let unit = (next(10) != 0).then(|| next(n_units) as i64);
                    let value = (next(8) != 0).then(|| next(1000) as f64 - 300.0);
                    (next(3) as usize, person, unit, next(3) != 0, next(2) == 0, next(2) == 0, next(3) == 0, value)
                })
                .collect();
            // In a random order, and clustered by person as the extract stores them (a
            // person's rows then fold into the waiting key).
            let mut clustered = rows.clone();
            clustered.sort_by_key(|r| r.1);
            for rows in [rows, clustered] {
                check_against_definition(&rows);
                // The same rows split over two partial aggregations, merged in a final one.
                let (a, b) = rows.split_at(rows.len() / 3);
                let mut fin = EvidenceGroups::new(shape());
                for part in [a, b] {
                    let mut p = EvidenceGroups::new(shape());
                    for chunk in part.chunks(500) {
                        let (values, groups) = batch(chunk);
                        p.update_batch(&values, &groups, None, 3).unwrap();
                    }
                    let state = p.state(EmitTo::All).unwrap();
                    fin.merge_batch(&state, &[0, 1, 2], 3).unwrap();
                }
                let mut whole = EvidenceGroups::new(shape());
                let (values, groups) = batch(&rows);
                whole.update_batch(&values, &groups, None, 3).unwrap();
                assert_eq!(evaluate(&mut fin), evaluate(&mut whole), "{n_units} units");
            }
        }
    }

    fn check_against_definition(rows: &[Row]) {
        use std::collections::{BTreeMap, BTreeSet};
        let mut acc = EvidenceGroups::new(shape());
        for chunk in rows.chunks(700) {
            let (values, groups) = batch(chunk);
            acc.update_batch(&values, &groups, None, 3).unwrap();
        }
        let got = evaluate(&mut acc);
        for g in 0..3usize {
            let mine: Vec<&Row> = rows.iter().filter(|r| r.0 == g).collect();
            let persons = |f: &dyn Fn(&Row) -> bool| -> Vec<u64> {
                mine.iter().filter(|r| f(r)).filter_map(|r| r.1).map(|p| p as u64).collect::<BTreeSet<_>>().into_iter().collect()
            };
            let units = |f: &dyn Fn(&Row) -> bool| {
                (mine.iter().filter(|r| f(r)).filter_map(|r| r.2).collect::<BTreeSet<_>>().len() as u64).min(UNIT_CAP)
            };
            let ev = got.get(g).unwrap();
            let count = ev.aggs.first().unwrap();
            assert_eq!(count.set, persons(&|r| r.3), "group {g}");
            assert_eq!(count.persons, vec![count.set.len() as u64]);
            assert_eq!(count.unknown, mine.iter().filter(|r| r.3 && r.1.is_none()).count() as u64);
            assert_eq!(count.units, vec![units(&|r| r.3)]);
            let sum = ev.aggs.get(1).unwrap();
            assert_eq!(sum.set, persons(&|r| r.4));
            assert_eq!(sum.units, vec![units(&|r| r.4)]);
            assert_eq!(sum.branches, vec![persons(&|r| r.4 && r.5).len() as u64, persons(&|r| r.4 && r.6).len() as u64]);
            let mut by: BTreeMap<Option<i64>, f64> = BTreeMap::new();
            for r in mine.iter().filter(|r| r.4) {
                *by.entry(r.1).or_default() += r.7.map_or(0.0, f64::abs);
            }
            let mut all: Vec<f64> = by.values().copied().collect();
            all.sort_by(|a, b| b.total_cmp(a));
            let want = (all.iter().sum::<f64>(), all.first().copied().unwrap_or(0.0), all.get(1).copied().unwrap_or(0.0));
            assert_eq!(sum.contributions, Some(want), "group {g}");
            assert_eq!(ev.row_persons, vec![persons(&|_| true).len() as u64]);
        }
    }

    #[test]
    fn malformed_bytes_are_refused() {
        let mut acc = EvidenceGroups::new(shape());
        let (values, groups) = batch(&ROWS);
        acc.update_batch(&values, &groups, None, 2).unwrap();
        let out = acc.evaluate(EmitTo::All).unwrap();
        let bytes = out.as_any().downcast_ref::<BinaryArray>().unwrap().value(0).to_vec();
        for cut in 0..bytes.len() {
            assert!(decode(&shape(), bytes.get(..cut).unwrap()).is_none());
        }
        let huge = u64::MAX.to_le_bytes().repeat(3);
        let state: ArrayRef = Arc::new(BinaryArray::from(vec![Some(huge.as_slice())]));
        assert!(EvidenceGroups::new(shape()).merge_batch(&[state], &[0], 1).is_err());
        // A state whose persons are not ascending is refused, not merged out of order; the
        // same state in order merges, and cut short anywhere it is refused.
        let mut acc = EvidenceGroups::new(shape());
        let (values, groups) = batch(&ROWS);
        acc.update_batch(&values, &groups, None, 2).unwrap();
        let state = acc.state(EmitTo::All).unwrap().remove(0);
        let good = state.as_any().downcast_ref::<BinaryArray>().unwrap().value(0).to_vec();
        let n = u64::from_le_bytes(good.get(..8).unwrap().try_into().unwrap());
        assert!(n >= 2, "the test needs two persons in the group");
        let mut swapped = good.clone();
        let (first, second) = (good.get(8..24).unwrap(), good.get(24..40).unwrap());
        swapped.splice(8..40, second.iter().chain(first).copied());
        let merge = |bytes: &[u8]| {
            let state: ArrayRef = Arc::new(BinaryArray::from(vec![Some(bytes)]));
            EvidenceGroups::new(shape()).merge_batch(&[state], &[0], 1)
        };
        assert!(merge(&good).is_ok());
        assert!(merge(&swapped).is_err(), "persons out of order");
        for cut in 0..good.len() {
            assert!(merge(good.get(..cut).unwrap()).is_err(), "cut at {cut}");
        }
    }
}
