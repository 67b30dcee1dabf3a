//! Bounds on what one statement may ask for outside the operators' memory pool (issue 14):
//! the SQL's length, how large its plan grows once common table expressions and views are
//! expanded, and the values that scalar functions build.
//!
//! DataFusion's memory pool counts what operators reserve (hash tables, sorts), not what a
//! scalar function allocates for its result, nor constants folded while planning:
//! `repeat('ab', 150000000)` would build 300 MB before any limit looked. The functions that
//! can make their output much larger than their input — `repeat`, `lpad`, `rpad`, `replace`,
//! `regexp_replace`, `range`, `generate_series`, `array_repeat`, `array_resize` — are
//! registered here in a wrapper that computes the size of what they are asked to build
//! *before* they build it and refuses more than [`MAX_VALUE_BYTES`] per value or
//! [`MAX_CALL_BYTES`] per call. What other functions build is bounded by what they are given
//! (`concat` of large values, say, is as large as its inputs together): the hard limit behind
//! all of it is the worker process's own memory limit (`crate::worker`).

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{DataType, FieldRef};
use datafusion::common::{DataFusionError, Result, ScalarValue};
use datafusion::logical_expr::sort_properties::{ExprProperties, SortProperties};
use datafusion::logical_expr::udf_eq::UdfEq;
use datafusion::logical_expr::{ColumnarValue, Documentation, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature};
use std::collections::HashMap;
use std::sync::Arc;

/// Longest SQL text accepted (bytes).
pub const MAX_SQL_BYTES: usize = 100_000;
/// Most table references a statement may expand to once common table expressions and views
/// are inlined (a chain of self-joined CTEs doubles at every step).
pub const MAX_RELATIONS: u64 = 1_000;
/// Most nodes of a logical plan.
pub const MAX_PLAN_NODES: usize = 10_000;
/// Largest value one function call may build (bytes; a list's elements count their own size
/// plus 8 bytes each).
pub const MAX_VALUE_BYTES: u64 = 16 << 20;
/// Largest result one function call may build over a whole batch (bytes).
pub const MAX_CALL_BYTES: u64 = 256 << 20;

/// How a function's output grows with its arguments.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Growth {
    /// `repeat(s, n)`: len(s) × n.
    Repeat,
    /// `lpad/rpad(s, n [, fill])`: n characters, up to 4 bytes each.
    Pad,
    /// `replace(s, from, to)`, `regexp_replace(s, pattern, to [, flags])`: every position of
    /// `s` may become `to`.
    Replace,
    /// `range/generate_series(start, stop [, step])` on integers: (stop − start) / step elements.
    Range,
    /// `array_repeat(x, n)`: n copies of x.
    Elements,
    /// `array_resize(a, n [, fill])`: n elements as large as a's (or the fill).
    Resize,
}

/// The functions wrapped, with how they grow.
const GROWING: &[(&str, Growth)] = &[
    ("repeat", Growth::Repeat),
    ("lpad", Growth::Pad),
    ("rpad", Growth::Pad),
    ("replace", Growth::Replace),
    ("regexp_replace", Growth::Replace),
    ("range", Growth::Range),
    ("generate_series", Growth::Range),
    ("array_repeat", Growth::Elements),
    ("array_resize", Growth::Resize),
];

/// Wraps the growing functions of `functions` (by name) with their bounds; returns the
/// wrapped functions to register in their place.
pub fn bounded_functions(functions: &HashMap<String, Arc<ScalarUDF>>) -> Vec<ScalarUDF> {
    GROWING
        .iter()
        .filter_map(|(name, growth)| {
            functions.get(*name).map(|f| ScalarUDF::new_from_impl(Bounded { inner: f.inner().clone().into(), growth: *growth }))
        })
        .collect()
}

fn too_large(name: &str, bytes: u64) -> DataFusionError {
    if bytes == u64::MAX {
        return DataFusionError::ResourcesExhausted(format!(
            "{name}: 作る値の大きさを見積もれません（符号の混ざった間隔、測れない型など）/ {name} would build a value whose size cannot be bounded (an interval mixing signs, a type it cannot measure)"
        ));
    }
    DataFusionError::ResourcesExhausted(format!(
        "{name}: 作る値が大きすぎます（{} MiB、上限 {} MiB/値・{} MiB/呼び出し）/ {name} would build {} MiB (limits: {} MiB per value, {} MiB per call)",
        bytes >> 20,
        MAX_VALUE_BYTES >> 20,
        MAX_CALL_BYTES >> 20,
        bytes >> 20,
        MAX_VALUE_BYTES >> 20,
        MAX_CALL_BYTES >> 20
    ))
}

/// The size in bytes of each row's value of an argument (a scalar is one size for every row):
/// strings and binaries their length, lists the sizes of their elements plus 8 bytes each,
/// structs their fields, anything else its width (8 at least).
enum Sizes {
    Same(u64),
    Each(Vec<u64>),
}

impl Sizes {
    fn of(v: &ColumnarValue) -> Sizes {
        match v {
            ColumnarValue::Scalar(s) => Sizes::Same(s.to_array_of_size(1).map_or(0, |a| value_bytes(a.as_ref(), 0))),
            ColumnarValue::Array(a) => Sizes::Each((0..a.len()).map(|i| value_bytes(a.as_ref(), i)).collect()),
        }
    }

    /// The number of elements of each row's list (0 for what is not a list).
    fn counts(v: &ColumnarValue) -> Sizes {
        let count = |a: &dyn Array, i: usize| -> u64 {
            if i >= a.len() || a.is_null(i) {
                return 0;
            }
            match a.data_type() {
                DataType::List(_) => a.as_list::<i32>().value_length(i).max(0) as u64,
                DataType::LargeList(_) => a.as_list::<i64>().value_length(i).max(0) as u64,
                DataType::FixedSizeList(_, n) => (*n).max(0) as u64,
                _ => 0,
            }
        };
        match v {
            ColumnarValue::Scalar(s) => Sizes::Same(s.to_array_of_size(1).map_or(0, |a| count(a.as_ref(), 0))),
            ColumnarValue::Array(a) => Sizes::Each((0..a.len()).map(|i| count(a.as_ref(), i)).collect()),
        }
    }

    fn at(&self, i: usize) -> u64 {
        match self {
            Sizes::Same(n) => *n,
            Sizes::Each(v) => v.get(i).copied().unwrap_or(0),
        }
    }
}

/// Entry `i` of an offsets (or sizes) buffer as a position; a negative or missing entry is 0.
fn offset<O: Copy + Into<i64>>(buffer: &[O], i: usize) -> usize {
    buffer.get(i).map_or(0, |&v| usize::try_from(v.into()).unwrap_or(0))
}

/// Where row `i`'s elements start and end in a list's values.
fn span<O: Copy + Into<i64>>(offsets: &[O], i: usize) -> (usize, usize) {
    (offset(offsets, i), offset(offsets, i + 1))
}

/// The size in bytes of row `i` of `a` (see [`Sizes`]); a null is 0.
fn value_bytes(a: &dyn Array, i: usize) -> u64 {
    if i >= a.len() || a.is_null(i) {
        return 0;
    }
    let elements = |child: &dyn Array, from: usize, to: usize| -> u64 {
        (from..to.min(child.len())).fold(0u64, |sum, j| sum.saturating_add(value_bytes(child, j)).saturating_add(8))
    };
    match a.data_type() {
        DataType::Utf8 => a.as_string::<i32>().value(i).len() as u64,
        DataType::LargeUtf8 => a.as_string::<i64>().value(i).len() as u64,
        DataType::Utf8View => a.as_string_view().value(i).len() as u64,
        DataType::Binary => a.as_binary::<i32>().value(i).len() as u64,
        DataType::LargeBinary => a.as_binary::<i64>().value(i).len() as u64,
        DataType::BinaryView => a.as_binary_view().value(i).len() as u64,
        DataType::List(_) => {
            let l = a.as_list::<i32>();
            let (from, to) = span(l.value_offsets(), i);
            elements(l.values().as_ref(), from, to)
        }
        DataType::LargeList(_) => {
            let l = a.as_list::<i64>();
            let (from, to) = span(l.value_offsets(), i);
            elements(l.values().as_ref(), from, to)
        }
        DataType::FixedSizeList(_, n) => {
            let n = (*n).max(0) as usize;
            elements(a.as_fixed_size_list().values().as_ref(), i * n, (i + 1) * n)
        }
        DataType::ListView(_) => {
            let l = a.as_list_view::<i32>();
            let (from, len) = (offset(l.value_offsets(), i), offset(l.value_sizes(), i));
            elements(l.values().as_ref(), from, from.saturating_add(len))
        }
        DataType::LargeListView(_) => {
            let l = a.as_list_view::<i64>();
            let (from, len) = (offset(l.value_offsets(), i), offset(l.value_sizes(), i));
            elements(l.values().as_ref(), from, from.saturating_add(len))
        }
        DataType::Map(_, _) => {
            let m = a.as_map();
            let (from, to) = span(m.value_offsets(), i);
            elements(m.entries(), from, to)
        }
        DataType::Struct(_) => a.as_struct().columns().iter().fold(0u64, |sum, c| sum.saturating_add(value_bytes(c.as_ref(), i))),
        // A dictionary's value is as large as the value its key points to.
        DataType::Dictionary(_, _) => {
            let d = a.as_any_dictionary();
            dictionary_key(d.keys(), i).map_or(0, |k| value_bytes(d.values().as_ref(), k))
        }
        // A nested type not measured above (unions, run-end encoded): not bounded, so refused.
        t if t.is_nested() || matches!(t, DataType::RunEndEncoded(_, _) | DataType::Union(_, _)) => u64::MAX,
        DataType::FixedSizeBinary(n) => (*n).max(0) as u64,
        t => t.primitive_width().unwrap_or(8).max(8) as u64,
    }
}

/// Row `i` of a dictionary's keys as an index into its values.
fn dictionary_key(keys: &dyn Array, i: usize) -> Option<usize> {
    use datafusion::arrow::datatypes::{Int8Type, Int16Type, Int32Type, Int64Type, UInt8Type, UInt16Type, UInt32Type, UInt64Type};
    if keys.is_null(i) {
        return None;
    }
    let k: i128 = match keys.data_type() {
        DataType::Int8 => keys.as_primitive::<Int8Type>().value(i).into(),
        DataType::Int16 => keys.as_primitive::<Int16Type>().value(i).into(),
        DataType::Int32 => keys.as_primitive::<Int32Type>().value(i).into(),
        DataType::Int64 => keys.as_primitive::<Int64Type>().value(i).into(),
        DataType::UInt8 => keys.as_primitive::<UInt8Type>().value(i).into(),
        DataType::UInt16 => keys.as_primitive::<UInt16Type>().value(i).into(),
        DataType::UInt32 => keys.as_primitive::<UInt32Type>().value(i).into(),
        DataType::UInt64 => keys.as_primitive::<UInt64Type>().value(i).into(),
        _ => return None,
    };
    usize::try_from(k).ok()
}

/// Row `i` of an argument as a scalar (a scalar argument is the same for every row).
fn scalar_at(v: &ColumnarValue, i: usize) -> Option<ScalarValue> {
    match v {
        ColumnarValue::Scalar(s) => Some(s.clone()),
        ColumnarValue::Array(a) => ScalarValue::try_from_array(a.as_ref(), i).ok(),
    }
}

/// An integer argument, row by row (negative and null count as 0).
enum Ints {
    Same(i64),
    Each(Vec<i64>),
}

impl Ints {
    fn of(v: &ColumnarValue) -> Ints {
        match v {
            ColumnarValue::Scalar(s) => Ints::Same(match s.cast_to(&DataType::Int64) {
                Ok(ScalarValue::Int64(Some(n))) => n,
                _ => 0,
            }),
            ColumnarValue::Array(a) => Ints::Each(match datafusion::arrow::compute::cast(a, &DataType::Int64) {
                Ok(c) => c.as_primitive::<datafusion::arrow::datatypes::Int64Type>().iter().map(|n| n.unwrap_or(0)).collect(),
                Err(_) => vec![0; a.len()],
            }),
        }
    }

    fn at(&self, i: usize) -> i64 {
        match self {
            Ints::Same(n) => *n,
            Ints::Each(v) => v.get(i).copied().unwrap_or(0),
        }
    }
}

/// A date or timestamp in nanoseconds since the epoch, widened so that no date overflows
/// (`Date32` reaches millions of years); `Some(None)` for a null, `None` for what is not a
/// time.
fn time_ns(v: &ScalarValue) -> Option<Option<i128>> {
    const DAY: i128 = 86_400_000_000_000;
    Some(match v {
        ScalarValue::Date32(d) => d.map(|d| i128::from(d) * DAY),
        ScalarValue::Date64(ms) => ms.map(|ms| i128::from(ms) * 1_000_000),
        ScalarValue::TimestampSecond(t, _) => t.map(|t| i128::from(t) * 1_000_000_000),
        ScalarValue::TimestampMillisecond(t, _) => t.map(|t| i128::from(t) * 1_000_000),
        ScalarValue::TimestampMicrosecond(t, _) => t.map(|t| i128::from(t) * 1_000),
        ScalarValue::TimestampNanosecond(t, _) => t.map(i128::from),
        ScalarValue::Null => None,
        _ => return None,
    })
}

/// Elements of a range over dates or timestamps in row `i`: the span over the smallest step the
/// interval can make (a month counted as 28 days), 1 day when no step is given. `Some(0)` when
/// an argument is null (the result is null); `None` — refused — when the count cannot be
/// bounded: an argument that is not a time, or an interval whose parts have different signs
/// (`1 month -31 days` can step by nothing at all).
fn time_range_len(args: &[ColumnarValue], i: usize) -> Option<u64> {
    let first = scalar_at(args.first()?, i)?;
    // Dates step in whole days: the engine drops the part of a step below a day.
    let dates = matches!(first, ScalarValue::Date32(_) | ScalarValue::Date64(_));
    let (Some(start), Some(stop)) = (time_ns(&first)?, time_ns(&scalar_at(args.get(1)?, i)?)?) else {
        return Some(0);
    };
    let step: i128 = match args.get(2) {
        None => 86_400_000_000_000,
        Some(v) => {
            let (months, days, nanos) = match scalar_at(v, i)? {
                ScalarValue::IntervalMonthDayNano(Some(x)) => (i128::from(x.months), i128::from(x.days), i128::from(x.nanoseconds)),
                ScalarValue::IntervalDayTime(Some(x)) => (0, i128::from(x.days), i128::from(x.milliseconds) * 1_000_000),
                ScalarValue::IntervalYearMonth(Some(m)) => (i128::from(m), 0, 0),
                ScalarValue::IntervalMonthDayNano(None)
                | ScalarValue::IntervalDayTime(None)
                | ScalarValue::IntervalYearMonth(None)
                | ScalarValue::Null => return Some(0),
                _ => return None,
            };
            const DAY: i128 = 86_400_000_000_000;
            let nanos = if dates { nanos / DAY * DAY } else { nanos };
            let parts = [months, days, nanos];
            if parts.iter().any(|p| *p > 0) && parts.iter().any(|p| *p < 0) {
                return None;
            }
            let step = (months * 28 * DAY + days * DAY + nanos).abs();
            if step == 0 && parts != [0, 0, 0] {
                // Less than a day over dates: no step at all.
                return None;
            }
            step
        }
    };
    if step == 0 {
        // The engine refuses a zero step itself.
        return Some(0);
    }
    u64::try_from((stop - start).abs() / step).ok().or(Some(u64::MAX))
}

/// A growing function, checked before it runs.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Bounded {
    inner: UdfEq<Arc<dyn ScalarUDFImpl>>,
    growth: Growth,
}

impl Bounded {
    /// Bytes the call would build: the largest value, and all rows together.
    fn demand(&self, args: &[ColumnarValue], rows: usize) -> (u64, u64) {
        let rows = if args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_))) { 1 } else { rows.max(1) };
        let per_row: Box<dyn Fn(usize) -> u64> = match (self.growth, args) {
            (Growth::Repeat, [s, n, ..]) => {
                let (s, n) = (Sizes::of(s), Ints::of(n));
                Box::new(move |i| s.at(i).saturating_mul(n.at(i).max(0) as u64))
            }
            (Growth::Pad, [_, n, ..]) => {
                let n = Ints::of(n);
                Box::new(move |i| (n.at(i).max(0) as u64).saturating_mul(4))
            }
            (Growth::Replace, [s, _, to, ..]) => {
                let (s, to) = (Sizes::of(s), Sizes::of(to));
                Box::new(move |i| (s.at(i) + 1).saturating_mul(to.at(i).max(1)))
            }
            (Growth::Range, [_, ..]) => {
                let integral = args.iter().all(|a| a.data_type().is_integer());
                if integral {
                    let ints: Vec<Ints> = args.iter().map(Ints::of).collect();
                    Box::new(move |i| {
                        let (start, stop) = match ints.as_slice() {
                            [stop] => (0, stop.at(i)),
                            [start, stop, ..] => (start.at(i), stop.at(i)),
                            [] => (0, 0),
                        };
                        let step = ints.get(2).map_or(1, |s| s.at(i)).unsigned_abs().max(1);
                        (stop.abs_diff(start) / step).saturating_mul(8)
                    })
                } else {
                    // Dates and timestamps with an interval step: the span over the step, row
                    // by row (arguments may come from the rows as well as from constants); what
                    // cannot be bounded is refused.
                    let args = args.to_vec();
                    Box::new(move |i| time_range_len(&args, i).map_or(u64::MAX, |n| n.saturating_mul(8)))
                }
            }
            (Growth::Elements, [first, n, rest @ ..]) => {
                // n copies of an element (or of a fill value), each as large as it is.
                let (n, element) = (Ints::of(n), Sizes::of(rest.first().unwrap_or(first)));
                Box::new(move |i| (n.at(i).max(0) as u64).saturating_mul(element.at(i).max(8)))
            }
            (Growth::Resize, [list, n, rest @ ..]) => {
                // n elements, each as large as the list's average element or the fill value.
                let n = Ints::of(n);
                let count = Sizes::counts(list);
                let list = Sizes::of(list);
                let fill = rest.first().map_or(Sizes::Same(0), Sizes::of);
                Box::new(move |i| {
                    let element = (list.at(i) / count.at(i).max(1)).max(fill.at(i)).max(8);
                    (n.at(i).max(0) as u64).saturating_mul(element)
                })
            }
            _ => Box::new(|_| 0),
        };
        (0..rows).fold((0, 0), |(max, total), i| {
            let v = per_row(i);
            (max.max(v), total.saturating_add(v))
        })
    }
}

#[warn(clippy::missing_trait_methods)]
impl ScalarUDFImpl for Bounded {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn display_name(&self, args: &[datafusion::logical_expr::Expr]) -> Result<String> {
        #[expect(deprecated)]
        self.inner.display_name(args)
    }

    fn schema_name(&self, args: &[datafusion::logical_expr::Expr]) -> Result<String> {
        self.inner.schema_name(args)
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.return_type(arg_types)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        self.inner.return_field_from_args(args)
    }

    fn is_nullable(&self, args: &[datafusion::logical_expr::Expr], schema: &dyn datafusion::common::ExprSchema) -> bool {
        #[expect(deprecated)]
        self.inner.is_nullable(args, schema)
    }

    fn is_strict(&self) -> bool {
        self.inner.is_strict()
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let (largest, total) = self.demand(&args.args, args.number_rows);
        if largest > MAX_VALUE_BYTES || total > MAX_CALL_BYTES {
            return Err(too_large(self.name(), largest.max(total)));
        }
        self.inner.invoke_with_args(args)
    }

    fn with_updated_config(&self, _config: &datafusion::common::config::ConfigOptions) -> Option<ScalarUDF> {
        None
    }

    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }

    fn simplify(
        &self,
        args: Vec<datafusion::logical_expr::Expr>,
        info: &datafusion::logical_expr::simplify::SimplifyContext,
    ) -> Result<datafusion::logical_expr::simplify::ExprSimplifyResult> {
        self.inner.simplify(args, info)
    }

    fn preimage(
        &self,
        args: &[datafusion::logical_expr::Expr],
        lit_expr: &datafusion::logical_expr::Expr,
        info: &datafusion::logical_expr::simplify::SimplifyContext,
    ) -> Result<datafusion::logical_expr::preimage::PreimageResult> {
        self.inner.preimage(args, lit_expr, info)
    }

    fn conditional_arguments<'a>(
        &self,
        args: &'a [datafusion::logical_expr::Expr],
    ) -> Option<(Vec<&'a datafusion::logical_expr::Expr>, Vec<&'a datafusion::logical_expr::Expr>)> {
        self.inner.conditional_arguments(args)
    }

    fn short_circuits(&self) -> bool {
        self.inner.short_circuits()
    }

    fn evaluate_bounds(
        &self,
        input: &[&datafusion::logical_expr::interval_arithmetic::Interval],
    ) -> Result<datafusion::logical_expr::interval_arithmetic::Interval> {
        self.inner.evaluate_bounds(input)
    }

    fn propagate_constraints(
        &self,
        interval: &datafusion::logical_expr::interval_arithmetic::Interval,
        inputs: &[&datafusion::logical_expr::interval_arithmetic::Interval],
    ) -> Result<Option<Vec<datafusion::logical_expr::interval_arithmetic::Interval>>> {
        self.inner.propagate_constraints(interval, inputs)
    }

    fn struct_field_mapping(&self, literal_args: &[Option<ScalarValue>]) -> Option<datafusion::logical_expr::StructFieldMapping> {
        self.inner.struct_field_mapping(literal_args)
    }

    fn output_ordering(&self, inputs: &[ExprProperties]) -> Result<SortProperties> {
        self.inner.output_ordering(inputs)
    }

    fn preserves_lex_ordering(&self, inputs: &[ExprProperties]) -> Result<bool> {
        self.inner.preserves_lex_ordering(inputs)
    }

    fn strictly_order_preserving(&self, inputs: &[ExprProperties]) -> Result<bool> {
        self.inner.strictly_order_preserving(inputs)
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        self.inner.coerce_types(arg_types)
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.inner.documentation()
    }

    fn placement(&self, args: &[datafusion::logical_expr::ExpressionPlacement]) -> datafusion::logical_expr::ExpressionPlacement {
        self.inner.placement(args)
    }
}
