//! Who stands behind each row of the standard tables, for the airlock's disclosure checks
//! (issue 17 §2, issue 22 §6–§8; HIC-IO2).
//!
//! A cell of an output may leave only if enough distinct persons — and, under the NDB rules,
//! enough institutions, pharmacies and insurers — stand behind it. Only the receipt (RE), the
//! checkup and the care tables hold the person ID (ID5) and the codes of the units; the detail
//! tables (SY, SI, IY, DPC, 調剤, checkup items) reach them through their parent record. This
//! table of facts says, for every standard table, where its rows' person and units come from,
//! so that a project's extract can carry them as hidden columns that only the checker reads.

/// One unit column of a table: a kind of unit (`institution`, `pharmacy`, `insurer`) and the
/// column holding its code. `pharmacy_when` names a column and a value for which the code is
/// a pharmacy's rather than an institution's (an RE row of a 調剤 receipt).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnitColumn {
    /// The kind of unit.
    pub kind: &'static str,
    /// The column with the unit's code.
    pub column: &'static str,
    /// A column and the value for which the code belongs to a pharmacy instead.
    pub pharmacy_when: Option<(&'static str, &'static str)>,
}

/// Where a table's rows get their person and units.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lineage {
    /// The parent table and the key column (same name in both) through which the rows reach
    /// their person and the parent's units; `None` when the table holds them itself.
    pub parent: Option<(&'static str, &'static str)>,
    /// The person ID column of the table itself (ID5; null or an invalid value is "unknown").
    pub person: Option<&'static str>,
    /// The table's own unit columns (used before the parent's of the same kind).
    pub units: &'static [UnitColumn],
}

const fn unit(kind: &'static str, column: &'static str) -> UnitColumn {
    UnitColumn { kind, column, pharmacy_when: None }
}

const RE_UNITS: &[UnitColumn] = &[
    UnitColumn { kind: "institution", column: "institution_code", pharmacy_when: Some(("receipt_kind", "調剤")) },
    unit("insurer", "insurer_number"),
];

const PRESCRIBER: &[UnitColumn] = &[unit("institution", "prescriber_code")];
const CHECKUP_UNITS: &[UnitColumn] = &[unit("institution", "institution_code"), unit("insurer", "insurer_number")];
const CARE_PROVIDER: &[UnitColumn] = &[unit("institution", "provider_code")];

const VIA_RE: Lineage = Lineage { parent: Some(("re", "receipt_id")), person: None, units: &[] };

/// The lineage of a standard table by name; `None` for the code masters and any table no person
/// stands behind.
pub fn lineage(table: &str) -> Option<Lineage> {
    Some(match table {
        "re" => Lineage { parent: None, person: Some("id5"), units: RE_UNITS },
        "sy" | "si" | "iy" | "dpc" => VIA_RE,
        // The prescribing institution of a 調剤 receipt; the pharmacy comes from its RE row.
        "pharmacy" => Lineage { parent: Some(("re", "receipt_id")), person: None, units: PRESCRIBER },
        "checkup" => Lineage { parent: None, person: Some("id5"), units: CHECKUP_UNITS },
        "checkup_item" => Lineage { parent: Some(("checkup", "checkup_id")), person: None, units: &[] },
        "care_cert" => Lineage { parent: None, person: Some("id5"), units: &[] },
        "care_claim" => Lineage { parent: None, person: Some("id5"), units: CARE_PROVIDER },
        _ => return None,
    })
}

/// Whether `value` is a valid person ID: 64 hexadecimal characters. Null, empty and the
/// placeholder some receipts carry for a missing ID5 (`9`) are not (issue 22 §6).
pub fn is_valid_person_id(value: &str) -> bool {
    value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fact_table_has_a_person_and_its_columns_exist() {
        for spec in super::super::NDB {
            let Some(l) = lineage(spec.name) else {
                assert!(spec.name.starts_with("m_"), "{} has no lineage", spec.name);
                continue;
            };
            let spec: &super::super::TableSpec = spec;
            let (holder, key): (&super::super::TableSpec, _) = match l.parent {
                Some((parent, key)) => (super::super::NDB.iter().find(|t| t.name == parent).copied().unwrap(), Some(key)),
                None => (spec, None),
            };
            let person = l.person.or_else(|| lineage(holder.name).and_then(|p| p.person)).unwrap();
            assert!(holder.column(person).is_some(), "{}.{person}", holder.name);
            if let Some(key) = key {
                assert!(spec.column(key).is_some() && holder.column(key).is_some(), "{} key {key}", spec.name);
            }
            for u in l.units {
                assert!(spec.column(u.column).is_some(), "{}.{}", spec.name, u.column);
                if let Some((c, _)) = u.pharmacy_when {
                    assert!(spec.column(c).is_some());
                }
            }
        }
    }

    #[test]
    fn placeholders_are_not_persons() {
        assert!(is_valid_person_id(&"ab".repeat(32)));
        for v in ["", "9", "0", &"g".repeat(64), &"a".repeat(63)] {
            assert!(!is_valid_person_id(v), "{v}");
        }
    }
}
