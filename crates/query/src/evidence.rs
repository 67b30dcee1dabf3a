//! `kura_evidence`: all the evidence of one aggregate node in one pass over its rows
//! (issue 17 §2 and "Performance", issue 22 §5–§7; HIC-IO2).
//!
//! The lineage rewrite ([`crate::lineage`]) used to add about ten aggregates per aggregate of
//! the researcher's query — distinct counts of persons and of each unit kind, the records
//! without a person key, CASE branches, per-person contributions and the person set itself —
//! each with a hash table of its own, most of them DataFusion's per-group slow path. This one
//! aggregate replaces them all: per group it keeps **one** table of the persons seen, where each
//! person carries a bit mask of the researcher's aggregates (and CASE branches) whose rows they
//! are behind, plus that person's sum for each aggregate that needs contributions; and one such
//! table per unit kind. Every evidence value is read off these tables at the end:
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
//! The keys are the hidden columns' keyed hashes (HMAC-SHA-256, [`crate::hidden`]): uniformly
//! distributed and unknown to anyone who could choose them, so the tables hash them with one
//! multiplication instead of SipHash.
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
use std::collections::HashMap;
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

type KeyMap = HashMap<i64, u32, KeyBuild>;

/// The keys of one column in one group, each with its mask.
#[derive(Debug, Default, Clone)]
struct Keyed {
    index: KeyMap,
    keys: Vec<i64>,
    masks: Vec<u64>,
    /// The key last seen and its slot: rows of one person usually come together.
    last: Option<(i64, u32)>,
}

impl Keyed {
    /// Adds `mask` to `key`'s; returns its slot and whether it is new.
    fn add(&mut self, key: i64, mask: u64) -> (usize, bool) {
        if let Some((k, slot)) = self.last
            && k == key
        {
            if let Some(m) = self.masks.get_mut(slot as usize) {
                *m |= mask;
            }
            return (slot as usize, false);
        }
        let next = self.keys.len() as u32;
        let slot = *self.index.entry(key).or_insert(next);
        let new = slot == next;
        if new {
            self.keys.push(key);
            self.masks.push(mask);
        } else if let Some(m) = self.masks.get_mut(slot as usize) {
            *m |= mask;
        }
        self.last = Some((key, slot));
        (slot as usize, new)
    }

    fn count(&self, bit: u64) -> u64 {
        self.masks.iter().filter(|m| *m & bit != 0).count() as u64
    }
}

/// One group's tables.
#[derive(Debug, Clone)]
struct Group {
    persons: Vec<Keyed>,
    units: Vec<Keyed>,
    /// Records without a person key, per aggregate.
    unknown: Vec<u64>,
    /// Their pooled contribution, per contributions aggregate.
    unknown_sum: Vec<f64>,
    /// The first person column's sums: `slot × k + c`.
    sums: Vec<f64>,
}

impl Group {
    fn new(shape: &Shape) -> Group {
        Group {
            persons: vec![Keyed::default(); shape.persons],
            units: vec![Keyed::default(); shape.units],
            unknown: vec![0; shape.aggs.len()],
            unknown_sum: vec![0.0; shape.sums()],
            sums: Vec::new(),
        }
    }

    fn entries(&self) -> usize {
        self.persons.iter().chain(&self.units).map(|k| k.keys.len()).sum()
    }
}

fn internal(what: &str) -> DataFusionError {
    DataFusionError::Internal(format!("{NAME}: {what}"))
}

/// The per-group accumulator.
#[derive(Debug)]
pub struct EvidenceGroups {
    shape: Shape,
    groups: Vec<Group>,
    /// Entries held (for [`GroupsAccumulator::size`]).
    entries: usize,
}

impl EvidenceGroups {
    /// An empty accumulator for `shape`.
    pub fn new(shape: Shape) -> Self {
        EvidenceGroups { shape, groups: Vec::new(), entries: 0 }
    }

    fn grow(&mut self, total: usize) {
        if self.groups.len() < total {
            let shape = &self.shape;
            self.groups.resize_with(total, || Group::new(shape));
        }
    }

    fn take(&mut self, emit_to: EmitTo) -> Vec<Group> {
        let taken = emit_to.take_needed(&mut self.groups);
        self.entries = self.groups.iter().map(Group::entries).sum();
        taken
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
        for (r, &g) in group_indices.iter().enumerate() {
            if opt_filter.is_some_and(|f| !holds(f, r)) {
                continue;
            }
            let Some(group) = self.groups.get_mut(g) else { return Err(internal("a group index out of range")) };
            let mut mask = 0u64;
            for (i, (cond, branches, _)) in cols.aggs.iter().enumerate() {
                if holds(cond, r) {
                    mask |= 1 << i;
                    let first = branch_bit.get(i).copied().unwrap_or(0);
                    for (b, branch) in branches.iter().enumerate() {
                        if holds(branch, r) {
                            mask |= 1 << (first + b);
                        }
                    }
                }
            }
            let agg_bits = if n_aggs >= 64 { u64::MAX } else { (1u64 << n_aggs) - 1 };
            match cols.persons.first().and_then(|p| key(p, r)) {
                Some(person) => {
                    let persons = group.persons.first_mut().ok_or_else(|| internal("no person column"))?;
                    let (slot, new) = persons.add(person, mask);
                    if new {
                        self.entries += 1;
                        group.sums.resize(group.sums.len() + k, 0.0);
                    }
                    let mut c = 0;
                    for (i, v) in values.iter().enumerate() {
                        let Some(v) = v else { continue };
                        if mask & (1 << i) != 0
                            && v.is_valid(r)
                            && let Some(s) = group.sums.get_mut(slot * k + c)
                        {
                            *s += v.value(r).abs();
                        }
                        c += 1;
                    }
                }
                None => {
                    let mut c = 0;
                    for (i, v) in values.iter().enumerate() {
                        if mask & (1 << i) != 0
                            && let Some(u) = group.unknown.get_mut(i)
                        {
                            *u += 1;
                        }
                        let Some(v) = v else { continue };
                        if mask & (1 << i) != 0
                            && v.is_valid(r)
                            && let Some(s) = group.unknown_sum.get_mut(c)
                        {
                            *s += v.value(r).abs();
                        }
                        c += 1;
                    }
                }
            }
            for (p, col) in cols.persons.iter().enumerate().skip(1) {
                if let (Some(person), Some(t)) = (key(col, r), group.persons.get_mut(p))
                    && t.add(person, mask & agg_bits).1
                {
                    self.entries += 1;
                }
            }
            for (u, col) in cols.units.iter().enumerate() {
                if let (Some(unit), Some(t)) = (key(col, r), group.units.get_mut(u))
                    && mask & agg_bits != 0
                    && t.add(unit, mask & agg_bits).1
                {
                    self.entries += 1;
                }
            }
        }
        Ok(())
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> datafusion::common::Result<ArrayRef> {
        let groups = self.take(emit_to);
        let mut out = BinaryBuilder::new();
        let mut buf = Vec::new();
        for g in &groups {
            buf.clear();
            encode_result(&self.shape, g, &mut buf);
            out.append_value(&buf);
        }
        Ok(Arc::new(out.finish()))
    }

    fn state(&mut self, emit_to: EmitTo) -> datafusion::common::Result<Vec<ArrayRef>> {
        let groups = self.take(emit_to);
        let mut out = BinaryBuilder::new();
        let mut buf = Vec::new();
        for g in &groups {
            buf.clear();
            encode_state(g, &mut buf);
            out.append_value(&buf);
        }
        Ok(vec![Arc::new(out.finish())])
    }

    fn merge_batch(&mut self, values: &[ArrayRef], group_indices: &[usize], total_num_groups: usize) -> datafusion::common::Result<()> {
        self.grow(total_num_groups);
        let states = values.first().and_then(|a| a.as_any().downcast_ref::<BinaryArray>()).ok_or_else(|| internal("malformed state"))?;
        let k = self.shape.sums();
        for (r, &g) in group_indices.iter().enumerate() {
            if states.is_null(r) {
                continue;
            }
            let Some(group) = self.groups.get_mut(g) else { return Err(internal("a group index out of range")) };
            let before = group.entries();
            merge_state(group, k, states.value(r)).ok_or_else(|| internal("malformed state"))?;
            self.entries += group.entries() - before;
        }
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
        // Keys, masks and an index slot per entry; the sums; the groups themselves.
        self.entries * 40 + self.groups.len() * std::mem::size_of::<Group>() + self.groups.iter().map(|g| g.sums.len() * 8).sum::<usize>()
    }
}

fn put_u64(buf: &mut Vec<u8>, v: u64) {
    buf.extend_from_slice(&v.to_le_bytes());
}

fn put_f64(buf: &mut Vec<u8>, v: f64) {
    buf.extend_from_slice(&v.to_le_bytes());
}

/// A partial group as it moves between DataFusion's partial and final aggregation.
fn encode_state(g: &Group, buf: &mut Vec<u8>) {
    for t in g.persons.iter().chain(&g.units) {
        put_u64(buf, t.keys.len() as u64);
        for (k, m) in t.keys.iter().zip(&t.masks) {
            put_u64(buf, *k as u64);
            put_u64(buf, *m);
        }
    }
    put_u64(buf, g.sums.len() as u64);
    for s in &g.sums {
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

impl Reader<'_> {
    fn u64(&mut self) -> Option<u64> {
        let (head, rest) = self.0.split_first_chunk::<8>()?;
        self.0 = rest;
        Some(u64::from_le_bytes(*head))
    }
    fn f64(&mut self) -> Option<f64> {
        self.u64().map(f64::from_bits)
    }
    fn len(&mut self) -> Option<usize> {
        let n = usize::try_from(self.u64()?).ok()?;
        // A count that the rest cannot hold is malformed (no huge allocation).
        (n <= self.0.len()).then_some(n)
    }
}

fn merge_state(g: &mut Group, k: usize, bytes: &[u8]) -> Option<()> {
    let mut r = Reader(bytes);
    let mut slots: Vec<usize> = Vec::new();
    for (t, table) in g.persons.iter_mut().chain(g.units.iter_mut()).enumerate() {
        let n = r.len()?;
        for _ in 0..n {
            let key = r.u64()? as i64;
            let mask = r.u64()?;
            let (slot, new) = table.add(key, mask);
            if t == 0 {
                slots.push(slot);
                if new {
                    g.sums.resize(g.sums.len() + k, 0.0);
                }
            }
        }
    }
    let n = r.len()?;
    if n != slots.len() * k {
        return None;
    }
    for slot in &slots {
        for c in 0..k {
            let v = r.f64()?;
            *g.sums.get_mut(slot * k + c)? += v;
        }
    }
    for u in g.unknown.iter_mut() {
        *u += r.u64()?;
    }
    for s in g.unknown_sum.iter_mut() {
        *s += r.f64()?;
    }
    r.0.is_empty().then_some(())
}

/// A group's evidence: per aggregate its counts, contributions and set; then the row's persons.
fn encode_result(shape: &Shape, g: &Group, buf: &mut Vec<u8>) {
    let k = shape.sums();
    let mut next_branch = shape.aggs.len();
    let mut c = 0;
    let none = Keyed::default();
    let first = g.persons.first().unwrap_or(&none);
    for (i, a) in shape.aggs.iter().enumerate() {
        let bit = 1u64 << i;
        for t in &g.persons {
            put_u64(buf, t.count(bit));
        }
        put_u64(buf, g.unknown.get(i).copied().unwrap_or(0));
        for t in &g.units {
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
                    consider(g.sums.get(slot * k + c).copied().unwrap_or(0.0));
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
        let mut set: Vec<u64> = first.keys.iter().zip(&first.masks).filter(|(_, m)| *m & bit != 0).map(|(k, _)| *k as u64).collect();
        set.sort_unstable();
        put_u64(buf, set.len() as u64);
        for p in set {
            put_u64(buf, p);
        }
    }
    for t in &g.persons {
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
    }
}
