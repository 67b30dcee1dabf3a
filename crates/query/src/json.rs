//! Results as JSON, the same for the command line (`--format json`) and the API: integers
//! exactly, non-finite floats as strings, types JSON cannot hold as their text.

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, FieldRef, Float16Type, Float32Type, Float64Type};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::json::writer::{Encoder, EncoderFactory, EncoderOptions, LineDelimited, NullableEncoder, make_encoder};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use std::io::Write;
use std::sync::Arc;

/// Writes a result as JSON lines, one object per row with every column (null as `null`):
/// integers exactly (an `i64` or `u64` above 2^53 keeps every digit), lists and structs as
/// JSON arrays and objects, dates and times as text. JSON has no number for a float that is
/// not finite: such a value is the string `"NaN"`, `"Infinity"` or `"-Infinity"`, never
/// `null` (which would read as SQL NULL); a column of a type JSON cannot hold (a union, a
/// map with keys that are not text) is written as its text.
pub fn write_json_lines(out: impl Write, batches: &[RecordBatch]) -> Result<(), ArrowError> {
    let mut w = datafusion::arrow::json::WriterBuilder::new()
        .with_explicit_nulls(true)
        .with_encoder_factory(Arc::new(KuraJson))
        .build::<_, LineDelimited>(out);
    for b in batches {
        w.write(b)?;
    }
    w.finish()?;
    Ok(())
}

/// Kura's exceptions to arrow-json's encoders (see [`write_json_lines`]).
#[derive(Debug)]
struct KuraJson;

/// arrow-json's own options, without [`KuraJson`] (for the values it encodes as usual).
static PLAIN_JSON: std::sync::LazyLock<EncoderOptions> = std::sync::LazyLock::new(EncoderOptions::default);

impl EncoderFactory for KuraJson {
    fn make_default_encoder<'a>(
        &self,
        field: &'a FieldRef,
        array: &'a dyn Array,
        _options: &'a EncoderOptions,
    ) -> std::result::Result<Option<NullableEncoder<'a>>, ArrowError> {
        let nulls = array.logical_nulls();
        let finite: Option<Box<dyn Fn(usize) -> Option<f64> + 'a>> = match array.data_type() {
            DataType::Float16 => {
                let a = array.as_primitive::<Float16Type>();
                Some(Box::new(move |i| Some(a.value(i).to_f64())))
            }
            DataType::Float32 => {
                let a = array.as_primitive::<Float32Type>();
                Some(Box::new(move |i| Some(f64::from(a.value(i)))))
            }
            DataType::Float64 => {
                let a = array.as_primitive::<Float64Type>();
                Some(Box::new(move |i| Some(a.value(i))))
            }
            _ => None,
        };
        if let Some(value) = finite {
            let inner = make_encoder(field, array, &PLAIN_JSON)?;
            return Ok(Some(NullableEncoder::new(Box::new(FloatEncoder { value, inner }), nulls)));
        }
        let as_text = match array.data_type() {
            DataType::Union(..) => true,
            DataType::Map(entries, _) => match entries.data_type() {
                DataType::Struct(fields) => {
                    fields.first().is_some_and(|k| !matches!(k.data_type(), DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View))
                }
                _ => true,
            },
            _ => false,
        };
        if as_text {
            let formatter = ArrayFormatter::try_new(array, &FormatOptions::default())?;
            return Ok(Some(NullableEncoder::new(Box::new(TextEncoder(formatter)), nulls)));
        }
        Ok(None)
    }
}

/// A float column: finite values as arrow-json writes them, the others as strings.
struct FloatEncoder<'a> {
    value: Box<dyn Fn(usize) -> Option<f64> + 'a>,
    inner: NullableEncoder<'a>,
}

impl Encoder for FloatEncoder<'_> {
    fn encode(&mut self, idx: usize, out: &mut Vec<u8>) {
        match (self.value)(idx) {
            Some(v) if v.is_nan() => out.extend_from_slice(b"\"NaN\""),
            Some(v) if v == f64::INFINITY => out.extend_from_slice(b"\"Infinity\""),
            Some(v) if v == f64::NEG_INFINITY => out.extend_from_slice(b"\"-Infinity\""),
            _ => self.inner.encode(idx, out),
        }
    }
}

/// A column written as the JSON string of each value's text.
struct TextEncoder<'a>(ArrayFormatter<'a>);

impl Encoder for TextEncoder<'_> {
    fn encode(&mut self, idx: usize, out: &mut Vec<u8>) {
        let text = self.0.value(idx).to_string();
        // Serialising a string cannot fail; an empty string would only be an empty value.
        out.extend_from_slice(serde_json::to_string(&text).unwrap_or_default().as_bytes());
    }
}

/// The rows of a result as JSON objects (see [`write_json_lines`]).
pub fn rows(batches: &[RecordBatch]) -> Result<Vec<serde_json::Value>, ArrowError> {
    let mut out = Vec::new();
    write_json_lines(&mut out, batches)?;
    out.split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).map_err(|e| ArrowError::JsonError(e.to_string())))
        .collect()
}

/// Row `row` of `a` as text, as a result table shows it (`NULL` for a null).
pub fn cell_text(a: &dyn Array, row: usize) -> String {
    let options = FormatOptions::default().with_null("NULL");
    ArrayFormatter::try_new(a, &options).map(|f| f.value(row).to_string()).unwrap_or_default()
}
