//! # kura-synth — a synthetic population with NDB-like claims, checkups and care data
//!
//! Deterministic by seed, sized by the number of persons, generated in chunks so that memory does
//! not depend on the population size. The population follows Japan's age/sex structure by
//! prefecture; each person has insurers, names and insurance numbers that are used **only** to
//! compute the NDB's hashed IDs (ID1, ID2, ID4, ID5; `data.md` §3) and are never emitted; linkage
//! noise is realistic (job changes change ID1, marriages change ID2/ID4, some institutions write
//! names differently, a share of receipts lack ID5).
//!
//! Month by month a person may see a clinic (医科入院外), be admitted (医科入院 or DPC), fill
//! prescriptions (調剤), attend a 特定健診 (ages 40–74) and use care services after a care-level
//! certification (mostly 65+). Diagnoses, treatments and checkup values are consistent: the
//! prevalence of type 2 diabetes, hypertension, dyslipidaemia, CKD and dementia rises with age,
//! diagnosed diabetics mostly take metformin or DPP-4 inhibitors and have higher HbA1c, influenza
//! peaks in winter, and death and care need rise with age.
//!
//! ```
//! use kura_crypto::{PseudonymKey, SecretKey};
//! use kura_synth::{Generator, SynthConfig};
//! let key = PseudonymKey::new(SecretKey::from_bytes([1; 32]));
//! let g = Generator::new(SynthConfig::new(300, 7), key).unwrap();
//! let chunk = g.generate_chunk(0);
//! assert_eq!(chunk.persons, 300);
//! assert!(!chunk.receipts.is_empty());
//! ```
#![forbid(unsafe_code)]

pub mod calendar;
pub mod codes;
pub mod config;
mod generate;
pub mod model;
pub mod reference;
pub mod world;

pub use generate::{ClearIdentity, Generator, LinkageNoise, SynthConfig, SynthError};
pub use model::Chunk;
pub use world::World;
