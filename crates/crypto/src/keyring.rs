//! The keyring: every wrapped key of a Kura home, in one JSON file written atomically.

use crate::{CryptoError, KeyId, MasterKey, Purpose, Result, SecretKey, WrappedKey, unwrap_key, wrap_key};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// One key in the keyring: its wrapped bytes and the key that wraps it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct KeyringEntry {
    /// The wrapping key's id; `None` means the master key.
    pub parent: Option<KeyId>,
    /// The wrapped key.
    pub wrapped: WrappedKey,
}

/// All wrapped keys of a home. Unwrapping walks the chain up to the master key, so a child is
/// readable only by someone holding the master key (or, later, a workspace key it was re-wrapped
/// under). Removing a key removes its descendants: crypto-shredding.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Keyring {
    /// Format version.
    pub version: u32,
    entries: BTreeMap<KeyId, KeyringEntry>,
}

impl Keyring {
    /// An empty keyring.
    pub fn new() -> Self {
        Self { version: 1, entries: BTreeMap::new() }
    }

    /// Loads a keyring file.
    pub fn load(path: &Path) -> Result<Self> {
        let p = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| CryptoError::Io { path: p.clone(), source })?;
        serde_json::from_str(&text).map_err(|e| CryptoError::BadKeyFile { path: p, reason: e.to_string() })
    }

    /// Writes the keyring atomically (temporary file, fsync, rename), mode 0600.
    pub fn save(&self, path: &Path) -> Result<()> {
        let p = path.display().to_string();
        let io = |source| CryptoError::Io { path: p.clone(), source };
        let text = serde_json::to_string_pretty(self).map_err(|e| CryptoError::BadKeyFile { path: p.clone(), reason: e.to_string() })?;
        crate::write_atomic(path, text.as_bytes(), 0o600).map_err(io)
    }

    /// Whether a key exists.
    pub fn contains(&self, id: &KeyId) -> bool {
        self.entries.contains_key(id)
    }

    /// The identifiers of all keys, in order.
    pub fn ids(&self) -> impl Iterator<Item = &KeyId> {
        self.entries.keys()
    }

    /// Generates a new random key, wraps it under `parent` (or the master key) and stores it.
    /// Returns the clear key so the caller can use it at once.
    pub fn create(&mut self, master: &MasterKey, parent: Option<&KeyId>, id: KeyId, purpose: Purpose) -> Result<SecretKey> {
        if self.entries.contains_key(&id) {
            return Err(CryptoError::DuplicateKey(id.to_string()));
        }
        let key = SecretKey::generate()?;
        let wrapped = match parent {
            None => master.wrap(&id, purpose, &key)?,
            Some(p) => {
                let kek = self.unwrap(master, p)?;
                wrap_key(&kek, &id, purpose, &key)?
            }
        };
        self.entries.insert(id, KeyringEntry { parent: parent.cloned(), wrapped });
        Ok(key)
    }

    /// Unwraps a key by walking its chain of parents up to the master key. The entry under `id`
    /// must be the key named `id` (a wrapped key copied into another key's slot is refused, not
    /// used in its place), and every parent on the way must be a key-encryption key.
    pub fn unwrap(&self, master: &MasterKey, id: &KeyId) -> Result<SecretKey> {
        self.unwrap_checked(master, id, None, 0)
    }

    /// Unwraps a key that must also be for `purpose`.
    pub fn unwrap_as(&self, master: &MasterKey, id: &KeyId, purpose: Purpose) -> Result<SecretKey> {
        self.unwrap_checked(master, id, Some(purpose), 0)
    }

    fn unwrap_checked(&self, master: &MasterKey, id: &KeyId, purpose: Option<Purpose>, depth: usize) -> Result<SecretKey> {
        let entry = self.entries.get(id).ok_or_else(|| CryptoError::MissingKey(id.to_string()))?;
        if entry.wrapped.id != *id || purpose.is_some_and(|p| p != entry.wrapped.purpose) || depth > 8 {
            return Err(CryptoError::Unwrap(id.to_string()));
        }
        match &entry.parent {
            None => master.unwrap(&entry.wrapped),
            Some(p) => {
                if p == id {
                    return Err(CryptoError::Unwrap(id.to_string()));
                }
                let kek = self.unwrap_checked(master, p, Some(Purpose::DatasetKek), depth + 1)?;
                unwrap_key(&kek, &entry.wrapped)
            }
        }
    }

    /// Re-wraps every key that hangs directly under the master key from `old` to `new` (the
    /// rest hang under those and need no change). Once the keyring is saved, a copy of it made
    /// earlier opens with `old` only: after [`Keyring::destroy`] and a rotation, a copy of the
    /// old keyring is of no use even to someone who later obtains the current master key.
    pub fn rewrap_master(&mut self, old: &MasterKey, new: &MasterKey) -> Result<()> {
        for entry in self.entries.values_mut().filter(|e| e.parent.is_none()) {
            let key = old.unwrap(&entry.wrapped)?;
            entry.wrapped = new.wrap(&entry.wrapped.id, entry.wrapped.purpose, &key)?;
        }
        Ok(())
    }

    /// Removes a key and every key below it (crypto-shredding). Returns how many were removed.
    pub fn destroy(&mut self, id: &KeyId) -> usize {
        let mut doomed = vec![id.clone()];
        let mut i = 0;
        while i < doomed.len() {
            let Some(cur) = doomed.get(i).cloned() else { break };
            for (k, e) in &self.entries {
                if e.parent.as_ref() == Some(&cur) && !doomed.contains(k) {
                    doomed.push(k.clone());
                }
            }
            i += 1;
        }
        doomed.iter().filter(|k| self.entries.remove(*k).is_some()).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_unwrap_save_load_and_shred() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keyring.json");
        let m = MasterKey::generate().unwrap();
        let mut kr = Keyring::new();
        let kek_id = KeyId::new("dataset/ndb").unwrap();
        let col_id = KeyId::new("dataset/ndb/re/id5").unwrap();
        kr.create(&m, None, kek_id.clone(), Purpose::DatasetKek).unwrap();
        let col = kr.create(&m, Some(&kek_id), col_id.clone(), Purpose::ColumnData).unwrap();
        assert!(kr.create(&m, None, kek_id.clone(), Purpose::DatasetKek).is_err());
        kr.save(&path).unwrap();
        let kr2 = Keyring::load(&path).unwrap();
        assert_eq!(kr2.unwrap(&m, &col_id).unwrap().expose(), col.expose());
        // The file never holds the clear key.
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains(&hex::encode(col.expose())));
        let mut kr3 = kr2.clone();
        assert_eq!(kr3.destroy(&kek_id), 2);
        assert!(matches!(kr3.unwrap(&m, &col_id), Err(CryptoError::MissingKey(_))));
        // A rotation: the rest opens with the new master only; the old copy with the old only.
        let other = KeyId::new("other").unwrap();
        let kept = kr3.create(&m, None, other.clone(), Purpose::Pseudonym).unwrap();
        let m2 = MasterKey::generate().unwrap();
        let before = kr3.clone();
        kr3.rewrap_master(&m, &m2).unwrap();
        assert_eq!(kr3.unwrap(&m2, &other).unwrap().expose(), kept.expose());
        assert!(kr3.unwrap(&m, &other).is_err());
        assert!(kr2.unwrap(&m2, &col_id).is_err(), "the copy from before the shredding does not open with the new master");
        assert!(before.unwrap(&m2, &other).is_err());
        // A wrapped key copied into another key's slot is refused, not used in its place.
        let mut swapped = kr3.clone();
        let stolen = swapped.entries[&other].clone();
        swapped.entries.insert(KeyId::new("dataset/other").unwrap(), stolen);
        assert!(matches!(swapped.unwrap(&m2, &KeyId::new("dataset/other").unwrap()), Err(CryptoError::Unwrap(_))));
        assert!(kr3.unwrap_as(&m2, &other, Purpose::Pseudonym).is_ok());
        assert!(kr3.unwrap_as(&m2, &other, Purpose::Accounts).is_err());
    }
}
