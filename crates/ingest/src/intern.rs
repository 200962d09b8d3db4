//! Byte keys → dense ids, for the million-row batch paths: one arena of key bytes and a table of
//! `u32` ids (no allocation per key, small table entries that move cheaply when the table grows).

use std::hash::{BuildHasher, Hasher};

use hashbrown::HashTable;
use rustc_hash::FxBuildHasher;

#[derive(Default)]
pub struct KeyIndex {
    /// All keys, back to back.
    arena: Vec<u8>,
    /// (start, end) of key `id` in the arena.
    spans: Vec<(u32, u32)>,
    table: HashTable<u32>,
    hasher: FxBuildHasher,
}

impl KeyIndex {
    pub fn with_capacity(keys: usize, key_bytes: usize) -> KeyIndex {
        KeyIndex {
            arena: Vec::with_capacity(key_bytes),
            spans: Vec::with_capacity(keys),
            table: HashTable::with_capacity(keys),
            hasher: FxBuildHasher,
        }
    }

    fn hash(&self, key: &[u8]) -> u64 {
        let mut h = self.hasher.build_hasher();
        h.write(key);
        h.write_usize(key.len());
        h.finish()
    }

    /// The bytes of key `id`.
    pub fn key(&self, id: u32) -> &[u8] {
        let (a, b) = self.spans[id as usize];
        &self.arena[a as usize..b as usize]
    }

    /// The id of `key`, and whether it was new.
    pub fn intern(&mut self, key: &[u8]) -> (u32, bool) {
        let h = self.hash(key);
        let KeyIndex { arena, spans, table, hasher } = self;
        let eq = |&id: &u32| {
            let (a, b) = spans[id as usize];
            &arena[a as usize..b as usize] == key
        };
        if let Some(&id) = table.find(h, eq) {
            return (id, false);
        }
        let id = u32::try_from(spans.len()).expect("fewer than 4 billion keys");
        let start = u32::try_from(arena.len()).expect("key arena under 4 GiB");
        arena.extend_from_slice(key);
        spans.push((start, arena.len() as u32));
        let rehash = |&id: &u32| {
            let (a, b) = spans[id as usize];
            let mut hh = hasher.build_hasher();
            hh.write(&arena[a as usize..b as usize]);
            hh.write_usize((b - a) as usize);
            hh.finish()
        };
        table.insert_unique(h, id, rehash);
        (id, true)
    }

    pub fn get(&self, key: &[u8]) -> Option<u32> {
        let h = self.hash(key);
        self.table.find(h, |&id| self.key(id) == key).copied()
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn ids_are_dense_and_stable(keys in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..6), 0..300)) {
            let mut idx = KeyIndex::default();
            let mut model: std::collections::HashMap<Vec<u8>, u32> = Default::default();
            for k in &keys {
                let (id, new) = idx.intern(k);
                match model.get(k) {
                    Some(&m) => prop_assert_eq!((id, new), (m, false)),
                    None => {
                        prop_assert_eq!((id as usize, new), (model.len(), true));
                        model.insert(k.clone(), id);
                    }
                }
            }
            for (k, &id) in &model {
                prop_assert_eq!(idx.get(k), Some(id));
            }
            prop_assert_eq!(idx.len(), model.len());
        }
    }
}
