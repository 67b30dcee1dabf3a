//! The IDs a receipt carries (ID1/ID2/ID4/ID5), with the linkage noise of data.md §3.

use super::*;

impl Generator {
    /// The hashed IDs of a person in month `m`, as written by an institution with a name style.
    pub(super) fn identity(&self, person: &Person, m: i32, style: usize, kind: Option<(ReceiptKind, &mut ChaCha8Rng)>) -> PersonIds {
        let e = person.episode_at(m);
        let v = usize::from(person.marriage_month.is_some_and(|mm| m >= mm));
        let noise = &self.cfg.noise;
        let id5 = match kind {
            None => Id5::Hash(person.id5),
            Some((k, rng)) => {
                let p = match k {
                    ReceiptKind::Inpatient => noise.id5_missing_inpatient,
                    ReceiptKind::Outpatient => noise.id5_missing_outpatient,
                    ReceiptKind::Dpc => noise.id5_missing_dpc,
                    ReceiptKind::Pharmacy => noise.id5_missing_pharmacy,
                };
                if !rng.random_bool(p) {
                    Id5::Hash(person.id5)
                } else if rng.random_bool(noise.id5_nine_share) {
                    Id5::Nine
                } else {
                    Id5::Null
                }
            }
        };
        PersonIds { id1: person.id1[e], id2: person.id2[v][style], id4: person.id4[v], id5 }
    }
}
