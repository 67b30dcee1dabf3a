//! The 特定健診 submission archive (`../shared/domain/data.md` §5.1): a zip whose one root
//! folder holds `ix08_V08.xml` (the index), `su08_V08.xml` (the summary), `DATA/` (one CDA
//! document per person), `CLAIMS/` and `XSD/`.
//!
//! A zip from outside can lie about everything, so [`Archive::open`] looks at every entry
//! before any is unpacked and refuses the archive for the first that:
//!
//! - is inconsistent: a local header that differs from the central directory's, two entries
//!   with one name or overlapping bytes, an entry hidden outside the directory (zip's own
//!   `validate_header_consistency`) — so nothing is inflated twice;
//! - names a path that leaves the archive or is not plainly relative (`..`, an absolute path,
//!   a drive letter, a backslash, a NUL, anything but ASCII letters, digits, `_`, `-` and `.`,
//!   a component ending in a dot), or is a symbolic link;
//! - is encrypted;
//! - states a size above [`Limits::entry_bytes`], or a compression ratio above
//!   [`Limits::ratio`] (a zip bomb), or brings the archive's total above
//!   [`Limits::total_bytes`] or its entries above [`Limits::entries`];
//! - lies outside the one root folder or is not among what that folder may hold
//!   (`ix08_V08.xml`, `su08_V08.xml`, `DATA/*.xml`, `CLAIMS/`, `XSD/`), or repeats a name
//!   (case ignored).
//!
//! Documents are then unpacked one at a time ([`Archive::documents`]) through a reader that
//! stops at the stated size, so an entry whose header understates its size cannot grow past
//! it. File names never decide anything but the folder: the documents are read for what
//! they are.

use crate::Problem;
use std::collections::BTreeSet;
use std::io::{Read, Seek};

/// The index every archive must hold, in its root folder.
pub const INDEX: &str = "ix08_V08.xml";
/// The summary.
pub const SUMMARY: &str = "su08_V08.xml";

/// How much an archive may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Entries (files and folders).
    pub entries: usize,
    /// Bytes of one entry, unpacked.
    pub entry_bytes: u64,
    /// Bytes of all entries, unpacked.
    pub total_bytes: u64,
    /// Unpacked bytes per packed byte, for entries above 64 KiB unpacked.
    pub ratio: u64,
}

impl Default for Limits {
    /// A year's submission of a large 健診機関: 200,000 documents, 1 GiB unpacked.
    fn default() -> Limits {
        Limits { entries: 200_000, entry_bytes: crate::cda::MAX_DOCUMENT as u64, total_bytes: 1 << 30, ratio: 100 }
    }
}

/// An opened, checked archive.
pub struct Archive<R: Read + Seek> {
    name: String,
    zip: zip::ZipArchive<R>,
    root: String,
    /// Entry numbers of the documents (`DATA/*.xml`), in name order.
    data: Vec<(String, usize)>,
    index: usize,
    summary: Option<usize>,
    limits: Limits,
}

fn bad(file: &str, entry: Option<&str>, message: String) -> Problem {
    Problem { file: file.to_owned(), line: 0, record: entry.map(str::to_owned), field: None, message }
}

/// Whether `name` is a plain relative path inside the archive: components of ASCII letters,
/// digits, `_`, `-` and `.`, none empty, none `.` or `..`, none ending in a dot (which some
/// systems drop), so that the name means the same on every system it is unpacked on.
fn safe_path(name: &str) -> bool {
    let name = name.strip_suffix('/').unwrap_or(name);
    !name.is_empty()
        && name.split('/').all(|part| {
            !part.is_empty()
                && !part.ends_with('.')
                && part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
        })
}

impl<R: Read + Seek> Archive<R> {
    /// Opens archive `input` (named `name` in problems) and checks every entry against `limits`.
    pub fn open(name: &str, input: R, limits: Limits) -> Result<Archive<R>, Problem> {
        let mut zip =
            zip::ZipArchive::new(input).map_err(|e| bad(name, None, format!("zip として読めません / not a readable zip archive: {e}")))?;
        if zip.len() > limits.entries {
            return Err(bad(name, None, format!("項目が {} を超えます / more than {} entries", limits.entries, limits.entries)));
        }
        // Every local header matches its central one, no two entries share a name or their
        // bytes, and no entry hides outside the directory: what is checked below is what is
        // unpacked, and no byte is inflated twice.
        zip.validate_header_consistency().map_err(|e| {
            bad(
                name,
                None,
                format!("zip の構造が矛盾しています（重複・重なり・隠れた項目）/ the archive's structure is inconsistent (duplicates, overlapping or hidden entries): {e}"),
            )
        })?;
        let mut total = 0u64;
        let mut names = BTreeSet::new();
        let mut roots = BTreeSet::new();
        let mut entries = Vec::with_capacity(zip.len());
        for i in 0..zip.len() {
            let f = zip.by_index_raw(i).map_err(|e| bad(name, None, format!("項目 {i} が読めません / entry {i} does not read: {e}")))?;
            let entry = f.name().map(|n| n.into_owned()).unwrap_or_else(|_| String::from_utf8_lossy(f.name_raw()).into_owned());
            let at = Some(entry.as_str());
            if !safe_path(&entry) || f.enclosed_name().is_none() {
                return Err(bad(
                    name,
                    at,
                    format!(
                        "項目名 '{}' はアーカイブの外を指すか、英数字・_・-・. の相対パスではありません / the entry name '{}' leaves the archive or is not a plain relative path of ASCII letters, digits, _, - and .",
                        entry.escape_debug(),
                        entry.escape_debug()
                    ),
                ));
            }
            if f.is_symlink() {
                return Err(bad(name, at, "シンボリックリンクは受け付けません / a symbolic link".to_owned()));
            }
            if f.encrypted() {
                return Err(bad(name, at, "暗号化された項目は読めません / an encrypted entry".to_owned()));
            }
            let (size, packed) = (f.size(), f.compressed_size());
            if size > limits.entry_bytes {
                return Err(bad(
                    name,
                    at,
                    format!(
                        "展開後 {size} バイトで上限 {} を超えます / {size} bytes unpacked, above the limit of {}",
                        limits.entry_bytes, limits.entry_bytes
                    ),
                ));
            }
            if size > 64 * 1024 && size / packed.max(1) > limits.ratio {
                return Err(bad(
                    name,
                    at,
                    format!("圧縮率が {} 倍を超えます（zip 爆弾）/ compressed more than {}-fold: a zip bomb", limits.ratio, limits.ratio),
                ));
            }
            total = total.saturating_add(size);
            if total > limits.total_bytes {
                return Err(bad(
                    name,
                    at,
                    format!(
                        "展開後の合計が {} バイトを超えます / more than {} bytes unpacked in all",
                        limits.total_bytes, limits.total_bytes
                    ),
                ));
            }
            let trimmed = entry.trim_end_matches('/').to_owned();
            // Names that differ only in case are one file on some systems.
            if !names.insert(trimmed.to_ascii_lowercase()) {
                return Err(bad(
                    name,
                    at,
                    format!(
                        "項目名 '{entry}' が重複しています（大文字小文字の違いだけを含む）/ the entry name '{entry}' twice (case ignored)"
                    ),
                ));
            }
            roots.insert(trimmed.split('/').next().unwrap_or_default().to_owned());
            entries.push((trimmed, i, f.is_dir()));
        }
        let root = match roots.len() {
            1 => roots.into_iter().next().unwrap_or_default(),
            0 => return Err(bad(name, None, "空のアーカイブです / the archive is empty".to_owned())),
            n => {
                return Err(bad(
                    name,
                    None,
                    format!("最上位のフォルダが {n} 個あります（1つのはず）/ {n} top-level entries: one root folder expected"),
                ));
            }
        };
        // What the root folder may hold: the index, the summary, DATA/ (documents only), CLAIMS/
        // and XSD/.
        for (entry, _, dir) in &entries {
            let Some(rest) = entry.strip_prefix(&format!("{root}/")) else {
                if *dir && *entry == root {
                    continue;
                }
                return Err(bad(
                    name,
                    Some(entry),
                    format!("最上位の '{entry}' はフォルダのはず / the top-level '{entry}' must be the root folder"),
                ));
            };
            let ok = match rest.split_once('/') {
                None => (!dir && (rest == INDEX || rest == SUMMARY)) || (*dir && matches!(rest, "DATA" | "CLAIMS" | "XSD")),
                Some(("DATA", doc)) => !dir && !doc.contains('/') && doc.ends_with(".xml"),
                Some(("CLAIMS" | "XSD", _)) => true,
                Some(_) => false,
            };
            if !ok {
                return Err(bad(
                    name,
                    Some(entry),
                    format!(
                        "'{entry}' は送付用アーカイブにない項目です（{INDEX}・{SUMMARY}・DATA/*.xml・CLAIMS/・XSD/ のみ）/ '{entry}' does not belong in a submission archive: {INDEX}, {SUMMARY}, DATA/*.xml, CLAIMS/ and XSD/ only"
                    ),
                ));
            }
        }
        let find = |leaf: &str| entries.iter().find(|(n, _, dir)| !dir && *n == format!("{root}/{leaf}")).map(|(_, i, _)| *i);
        let index = find(INDEX).ok_or_else(|| bad(name, None, format!("索引 {root}/{INDEX} がありません / no index {root}/{INDEX}")))?;
        let summary = find(SUMMARY);
        let prefix = format!("{root}/DATA/");
        let mut data: Vec<(String, usize)> =
            entries.iter().filter(|(n, _, dir)| !dir && n.starts_with(&prefix)).map(|(n, i, _)| (n.clone(), *i)).collect();
        data.sort();
        Ok(Archive { name: name.to_owned(), zip, root, data, index, summary, limits })
    }

    /// The root folder's name (`{送付元}_{送付先}_{yyyymmdd}{seq}_{区分}`).
    pub fn root(&self) -> &str {
        &self.root
    }

    /// The number of documents under `DATA/`.
    pub fn document_count(&self) -> usize {
        self.data.len()
    }

    /// Unpacks entry `i`, never beyond the limits whatever its header says.
    fn unpack(&mut self, i: usize, entry: &str) -> Result<Vec<u8>, Problem> {
        let limit = self.limits.entry_bytes;
        let file = self.zip.by_index(i).map_err(|e| bad(&self.name, Some(entry), format!("展開できません / does not unpack: {e}")))?;
        let stated = file.size();
        let mut out = Vec::with_capacity(usize::try_from(stated.min(limit)).unwrap_or(0));
        file.take(limit.min(stated).saturating_add(1))
            .read_to_end(&mut out)
            .map_err(|e| bad(&self.name, Some(entry), format!("展開できません（壊れている）/ does not unpack (damaged?): {e}")))?;
        if out.len() as u64 != stated {
            return Err(bad(
                &self.name,
                Some(entry),
                format!(
                    "展開した大きさ {} が記載の {stated} と違います / unpacked to {} bytes, its header says {stated}",
                    out.len(),
                    out.len()
                ),
            ));
        }
        Ok(out)
    }

    /// The index's bytes (checked as XML by [`check_xml`]).
    pub fn index(&mut self) -> Result<Vec<u8>, Problem> {
        let entry = format!("{}/{INDEX}", self.root);
        let bytes = self.unpack(self.index, &entry)?;
        check_xml(&entry, &bytes)?;
        Ok(bytes)
    }

    /// The summary's bytes, where the archive has one (checked as XML).
    pub fn summary(&mut self) -> Result<Option<Vec<u8>>, Problem> {
        let Some(i) = self.summary else { return Ok(None) };
        let entry = format!("{}/{SUMMARY}", self.root);
        let bytes = self.unpack(i, &entry)?;
        check_xml(&entry, &bytes)?;
        Ok(Some(bytes))
    }

    /// The documents under `DATA/`, one at a time: (entry name, bytes).
    pub fn documents(&mut self) -> impl Iterator<Item = Result<(String, Vec<u8>), Problem>> + '_ {
        let list = self.data.clone();
        list.into_iter().map(move |(entry, i)| self.unpack(i, &entry).map(|b| (entry, b)))
    }
}

/// Checks that `bytes` is well-formed UTF-8 XML without a `DOCTYPE` or any entity but XML's
/// own (the index and summary, whose contents Kura does not interpret further).
pub fn check_xml(name: &str, bytes: &[u8]) -> Result<(), Problem> {
    use quick_xml::events::Event;
    let fail = |message: String| bad(name, None, message);
    if bytes.len() > crate::cda::MAX_DOCUMENT * 16 {
        return Err(fail("XML が大きすぎます / the XML is too large".to_owned()));
    }
    let text = std::str::from_utf8(bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes))
        .map_err(|_| fail("UTF-8 ではありません / not UTF-8".to_owned()))?;
    let mut reader = quick_xml::Reader::from_str(text);
    reader.config_mut().check_end_names = true;
    let mut depth = 0usize;
    loop {
        match reader.read_event() {
            Ok(Event::DocType(_)) => {
                return Err(fail("DOCTYPE は受け付けません（外部実体・実体展開の攻撃を防ぐため）/ a DOCTYPE is refused (external entities, billion laughs)".to_owned()));
            }
            Ok(Event::GeneralRef(r)) => {
                let n = r.xml_content(quick_xml::XmlVersion::Implicit1_0).into_owned();
                if !r.is_char_ref() && quick_xml::escape::resolve_predefined_entity(&n).is_none() {
                    return Err(fail(format!("実体参照 &{n}; は定義されていません / the entity &{n}; is not defined")));
                }
            }
            Ok(Event::Start(_)) => {
                depth += 1;
                if depth > crate::cda::MAX_DEPTH {
                    return Err(fail("要素の入れ子が深すぎます / elements nested too deep".to_owned()));
                }
            }
            Ok(Event::End(_)) => depth = depth.saturating_sub(1),
            Ok(Event::Eof) => return Ok(()),
            Ok(_) => {}
            Err(e) => return Err(fail(format!("XML として読めません / not well-formed XML: {e}"))),
        }
    }
}
