//! Time-based one-time passwords (RFC 6238) with HMAC-SHA-256, and their enrolment.
//!
//! RFC 6238 allows HMAC-SHA-1, -256 and -512; Kura uses **SHA-256** because SHA-1 is not on
//! the CRYPTREC list. The provisioning URI says `algorithm=SHA256`, which current authenticator
//! apps (FreeOTP, Aegis, 1Password, Google Authenticator) honour. Codes are 6 digits for a
//! 30-second step; a code is accepted one step either side of the server's clock, and a
//! step once used is never accepted again (replay protection, kept per user in the store).

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Seconds per step.
pub const STEP: u64 = 30;
/// Digits per code.
pub const DIGITS: u32 = 6;
/// Bytes of a generated secret (160 bits, as RFC 4226 recommends).
pub const SECRET_LEN: usize = 20;

/// The code for `step` (RFC 4226 dynamic truncation over HMAC-SHA-256).
pub fn code_at_step(secret: &[u8], step: u64, digits: u32) -> u32 {
    #[allow(clippy::expect_used, reason = "HMAC takes keys of any length (RFC 2104): new_from_slice cannot fail")]
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(&step.to_be_bytes());
    let h: [u8; 32] = mac.finalize().into_bytes().into();
    // Dynamic truncation: the low nibble of the last byte (0–15) picks 4 of the 32 bytes.
    let offset = usize::from(h[31] & 0x0f);
    let word = h.get(offset..offset + 4).and_then(|w| <[u8; 4]>::try_from(w).ok()).unwrap_or_default();
    (u32::from_be_bytes(word) & 0x7fff_ffff) % 10u32.pow(digits)
}

/// The step of a Unix time.
pub fn step_of(unix_seconds: u64) -> u64 {
    unix_seconds / STEP
}

/// Checks a 6-digit `code` at `unix_seconds` against the steps around it, refusing steps at or
/// below `last_used` (replay). Returns the matching step, which the caller stores as the new
/// `last_used`. Comparison does not stop early on a match.
pub fn verify(secret: &[u8], code: &str, unix_seconds: u64, last_used: u64) -> Option<u64> {
    let code = code.trim();
    if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let want: u32 = code.parse().ok()?;
    let now = step_of(unix_seconds);
    let mut found = None;
    for step in [now.saturating_sub(1), now, now + 1] {
        let ok = code_at_step(secret, step, DIGITS) == want;
        if ok && step > last_used && found.is_none() {
            found = Some(step);
        }
    }
    found
}

/// RFC 4648 base32 without padding, as authenticator apps take a secret.
pub fn base32(bytes: &[u8]) -> String {
    data_encoding::BASE32_NOPAD.encode(bytes)
}

/// Decodes RFC 4648 base32 (either case; padding and spaces ignored), as a user might type a
/// secret back; `None` on any other character or a length base32 cannot have.
pub fn base32_decode(text: &str) -> Option<Vec<u8>> {
    let clean: String = text.chars().filter(|c| !matches!(c, '=' | ' ')).map(|c| c.to_ascii_uppercase()).collect();
    data_encoding::BASE32_NOPAD.decode(clean.as_bytes()).ok()
}

/// The `otpauth://` URI an authenticator app reads from the QR code.
pub fn provisioning_uri(issuer: &str, account: &str, secret: &[u8]) -> String {
    let enc = |s: &str| -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    format!(
        "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm=SHA256&digits={DIGITS}&period={STEP}",
        enc(issuer),
        enc(account),
        base32(secret),
        enc(issuer)
    )
}

/// The QR code of `uri` as an SVG document, rendered here (no external service sees the secret).
pub fn qr_svg(uri: &str) -> Result<String, qrcode::types::QrError> {
    let code = qrcode::QrCode::with_error_correction_level(uri.as_bytes(), qrcode::EcLevel::M)?;
    Ok(code.render::<qrcode::render::svg::Color<'_>>().min_dimensions(200, 200).quiet_zone(true).build())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B, SHA-256 column (8 digits; the seed is 32 bytes for SHA-256).
    #[test]
    fn rfc6238_sha256_vectors() {
        let seed = b"12345678901234567890123456789012";
        for (t, want) in [
            (59u64, 46119246u32),
            (1111111109, 68084774),
            (1111111111, 67062674),
            (1234567890, 91819424),
            (2000000000, 90698825),
            (20000000000, 77737706),
        ] {
            assert_eq!(code_at_step(seed, step_of(t), 8), want, "T={t}");
        }
    }

    #[test]
    fn window_and_replay() {
        let secret = [7u8; SECRET_LEN];
        let t = 1_800_000_000;
        let code = format!("{:06}", code_at_step(&secret, step_of(t), DIGITS));
        let step = verify(&secret, &code, t, 0).unwrap();
        assert_eq!(step, step_of(t));
        // The same code again: refused.
        assert_eq!(verify(&secret, &code, t, step), None);
        // A code from the previous step is still accepted 30 s later, but not 90 s later.
        assert!(verify(&secret, &code, t + 30, 0).is_some());
        assert!(verify(&secret, &code, t + 90, 0).is_none());
        assert!(verify(&secret, "12345", t, 0).is_none());
        assert!(verify(&secret, "abcdef", t, 0).is_none());
    }

    #[test]
    fn base32_and_uri() {
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
        assert_eq!(base32(b"f"), "MY");
        for n in 0..=20u8 {
            let bytes: Vec<u8> = (0..n).map(|i| i.wrapping_mul(37) ^ 0xA5).collect();
            assert_eq!(base32_decode(&base32(&bytes)).as_deref(), Some(&bytes[..]));
        }
        assert_eq!(base32_decode("mzxw 6ytb oi=="), Some(b"foobar".to_vec()));
        assert_eq!(base32_decode("MZXW1"), None, "1 is not in the alphabet");
        let uri = provisioning_uri("Kura 蔵", "alice@1310000001", b"foobar");
        assert!(uri.starts_with("otpauth://totp/Kura%20%E8%94%B5:alice%401310000001?secret=MZXW6YTBOI&"), "{uri}");
        assert!(uri.contains("algorithm=SHA256"));
        let svg = qr_svg(&uri).unwrap();
        assert!(svg.contains("<svg") && !svg.contains("href"), "{}", &svg[..200]);
    }
}
