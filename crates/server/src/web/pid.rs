//! Opaque person links (PIPL): a page address never carries an ID number, since addresses end up in
//! browser histories, bookmarks and access logs. `/web/person/{key}` takes a key that encrypts the ID
//! number deterministically under a server secret (kept in `app_secrets`, the same for every server
//! process on the database):
//!
//! `tag = HMAC(k, "tag" ‖ id)[..8]`, `key = hex(tag ‖ (id ⊕ HMAC(k, "stream" ‖ tag ‖ i)…))`.
//!
//! The tag is both the nonce of the stream and the check on decryption (a synthetic-IV construction
//! with HMAC-SHA256 as the PRF): the same person always gets the same address, a forged or altered key
//! is refused, and two keys reveal nothing about how their ID numbers relate.

use hmac::{Hmac, Mac};
use sha2::Sha256;

const TAG: usize = 8;

/// The link key of a server.
#[derive(Clone)]
pub struct PidKey([u8; 32]);

impl PidKey {
    /// From the stored secret (hex of 32 bytes).
    pub fn from_hex(hex: &str) -> Option<PidKey> {
        let bytes = unhex(hex)?;
        Some(PidKey(bytes.try_into().ok()?))
    }

    /// A new random secret, as stored.
    pub fn random_hex() -> String {
        let mut b = [0u8; 32];
        getrandom::getrandom(&mut b).expect("the operating system's random source");
        to_hex(&b)
    }

    fn mac(&self) -> Hmac<Sha256> {
        Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length")
    }

    fn tag(&self, id: &[u8]) -> [u8; TAG] {
        let mut m = self.mac();
        m.update(b"tag");
        m.update(id);
        let full = m.finalize().into_bytes();
        full[..TAG].try_into().expect("8 of 32 bytes")
    }

    fn xor_stream(&self, tag: &[u8], data: &mut [u8]) {
        for (i, chunk) in data.chunks_mut(32).enumerate() {
            let mut m = self.mac();
            m.update(b"stream");
            m.update(tag);
            m.update(&(i as u32).to_be_bytes());
            let block = m.finalize().into_bytes();
            for (d, k) in chunk.iter_mut().zip(block.iter()) {
                *d ^= k;
            }
        }
    }

    /// The key of an ID number.
    pub fn encode(&self, id_no: &str) -> String {
        let tag = self.tag(id_no.as_bytes());
        let mut body = id_no.as_bytes().to_vec();
        self.xor_stream(&tag, &mut body);
        let mut out = tag.to_vec();
        out.extend_from_slice(&body);
        to_hex(&out)
    }

    /// The ID number of a key made by this server; `None` for anything else.
    pub fn decode(&self, key: &str) -> Option<String> {
        let raw = unhex(key)?;
        if raw.len() <= TAG || raw.len() > TAG + 64 {
            return None;
        }
        let (tag, body) = raw.split_at(TAG);
        let mut id = body.to_vec();
        self.xor_stream(tag, &mut id);
        // The tag is recomputed and compared in constant time.
        let mut m = self.mac();
        m.update(b"tag");
        m.update(&id);
        m.verify_truncated_left(tag).ok()?;
        String::from_utf8(id).ok()
    }
}

fn to_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> PidKey {
        PidKey([seed; 32])
    }

    #[test]
    fn a_key_round_trips_and_hides_the_id_number() {
        let k = key(7);
        for id in ["62042219800101001X", "620422198001010027", "G12345678"] {
            let enc = k.encode(id);
            assert_eq!(k.decode(&enc).as_deref(), Some(id));
            assert!(!enc.contains(&id[..6]) || enc.len() != id.len(), "{enc}");
            assert_eq!(enc, k.encode(id), "the same person always has the same address");
            assert!(enc.bytes().all(|b| b.is_ascii_hexdigit()), "{enc}");
        }
        // Two ID numbers differing in the last digit give unrelated keys.
        let (a, b) = (k.encode("620422198001010019"), k.encode("620422198001010027"));
        assert_ne!(a[..16], b[..16]);
        assert_ne!(a[16..], b[16..]);
    }

    #[test]
    fn forged_altered_or_foreign_keys_are_refused() {
        let k = key(7);
        let enc = k.encode("62042219800101001X");
        let mut altered = enc.clone().into_bytes();
        let last = altered.len() - 1;
        altered[last] = if altered[last] == b'0' { b'1' } else { b'0' };
        assert_eq!(k.decode(std::str::from_utf8(&altered).unwrap()), None);
        assert_eq!(key(8).decode(&enc), None, "another server's key");
        for bad in ["", "zz", "62042219800101001X", "0011223344556677", &enc[..enc.len() - 1]] {
            assert_eq!(k.decode(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_stored_secret_is_32_random_bytes() {
        let (a, b) = (PidKey::random_hex(), PidKey::random_hex());
        assert_ne!(a, b);
        assert!(PidKey::from_hex(&a).is_some());
        assert!(PidKey::from_hex("abcd").is_none());
    }
}
