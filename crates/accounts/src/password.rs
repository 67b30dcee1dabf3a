//! Passwords: Argon2id hashing in a bounded pool, and the rules a new password must pass
//! (HX-6, HIC-U3).
//!
//! A new password is refused when it is shorter than the policy's minimum, when zxcvbn scores
//! it below 3 of 4 with the user's own login, name and institution as known words, when it is
//! (or, stripped of leading and trailing digits and symbols, is) on the bundled list of common
//! passwords, when it contains the login, or when it matches one of the user's recent
//! passwords. No periodic change is forced: the second factor is mandatory, which is what the
//! MHLW guideline asks for instead.

use crate::AccountsError;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use std::sync::Arc;
use tokio::sync::Semaphore;

const COMMON: &str = include_str!("common-passwords.txt");

/// Argon2id cost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HashCost {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Passes.
    pub iterations: u32,
}

impl HashCost {
    /// 19 MiB, 2 passes, 1 lane: the OWASP baseline for Argon2id (about 20 ms on one core here).
    pub const DEFAULT: HashCost = HashCost { memory_kib: 19 * 1024, iterations: 2 };
    /// A cheap cost for tests only.
    pub const TEST: HashCost = HashCost { memory_kib: 256, iterations: 1 };
}

/// Hashes passwords on a bounded number of blocking threads, so a flood of login attempts
/// waits for a permit instead of taking every core (other requests keep being served), and a
/// queue longer than `max_waiting` is refused at once instead of growing without bound.
#[derive(Clone, Debug)]
pub struct Hasher {
    cost: HashCost,
    permits: Arc<Semaphore>,
    waiting: Arc<std::sync::atomic::AtomicUsize>,
    max_waiting: usize,
}

impl Hasher {
    /// A pool of `threads` hashing threads (at least 1) with room for `max_waiting` waiters.
    pub fn new(cost: HashCost, threads: usize, max_waiting: usize) -> Hasher {
        Hasher { cost, permits: Arc::new(Semaphore::new(threads.max(1))), waiting: Arc::default(), max_waiting }
    }

    /// One thread fewer than the machine has (at least one): the rest serve requests.
    pub fn for_this_machine(cost: HashCost) -> Hasher {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        Hasher::new(cost, cores.saturating_sub(1).max(1), 256)
    }

    fn argon2(cost: HashCost) -> Result<Argon2<'static>, AccountsError> {
        let params = Params::new(cost.memory_kib, cost.iterations, 1, None)?;
        Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
    }

    async fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> Result<T, AccountsError> {
        use std::sync::atomic::Ordering;
        if self.waiting.fetch_add(1, Ordering::SeqCst) >= self.max_waiting {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(AccountsError::Busy);
        }
        let permit = self.permits.clone().acquire_owned().await;
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        let permit = permit.map_err(|_| AccountsError::Busy)?;
        let out = tokio::task::spawn_blocking(move || {
            let out = f();
            drop(permit);
            out
        })
        .await?;
        Ok(out)
    }

    /// The PHC string (`$argon2id$v=19$m=…,t=…,p=1$salt$hash`) of `password`.
    pub async fn hash(&self, password: &str) -> Result<String, AccountsError> {
        let password = zeroize::Zeroizing::new(password.to_string());
        let cost = self.cost;
        let mut salt = [0u8; 16];
        kura_crypto::random_bytes(&mut salt)?;
        self.run(move || {
            let salt = SaltString::encode_b64(&salt)?;
            let hash = Hasher::argon2(cost)?.hash_password(password.as_bytes(), &salt)?;
            Ok(hash.to_string())
        })
        .await?
    }

    /// Whether `password` matches the PHC string `phc` (the cost is read from the string).
    pub async fn verify(&self, password: &str, phc: &str) -> Result<bool, AccountsError> {
        let password = zeroize::Zeroizing::new(password.to_string());
        let phc = phc.to_string();
        self.run(move || {
            let parsed = PasswordHash::new(&phc)?;
            Ok(Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
        })
        .await?
    }

    /// Checks `password` against every PHC string in `history`; true if any matches.
    pub async fn matches_any(&self, password: &str, history: &[String]) -> Result<bool, AccountsError> {
        for phc in history {
            if self.verify(password, phc).await? {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

/// Why a new password was refused. Each says what to do, in Japanese and English.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Weakness {
    /// Shorter than the minimum.
    TooShort(usize),
    /// On the list of common passwords.
    Common,
    /// Contains the login or the user's name.
    Personal,
    /// zxcvbn's estimate is too low.
    Guessable(String),
    /// One of the recent passwords.
    Reused(usize),
}

impl std::fmt::Display for Weakness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Weakness::TooShort(n) => write!(f, "{n} 文字以上にしてください / use at least {n} characters"),
            Weakness::Common => {
                f.write_str("よく使われるパスワードです。別のものにしてください / this is a common password: choose another")
            }
            Weakness::Personal => f.write_str("ID・氏名・機関名を含めないでください / do not include your login, name or institution"),
            Weakness::Guessable(hint) => {
                write!(
                    f,
                    "推測されやすいパスワードです。単語を組み合わせて長くしてください / easy to guess: make it longer, from several unrelated words"
                )?;
                if !hint.is_empty() {
                    write!(f, " ({hint})")?;
                }
                Ok(())
            }
            Weakness::Reused(n) => {
                write!(f, "直近 {n} 回に使ったパスワードは使えません / you used this password recently (last {n}): choose another")
            }
        }
    }
}

/// The checks that need no stored hashes: length, common list, personal words, zxcvbn.
/// `personal` holds the login, the user's name, the institution code and name.
pub fn check_strength(password: &str, min_len: usize, personal: &[&str]) -> Result<(), Weakness> {
    if password.chars().count() < min_len {
        return Err(Weakness::TooShort(min_len));
    }
    let lower = password.to_lowercase();
    let stripped = lower.trim_matches(|c: char| !c.is_alphabetic());
    if COMMON.lines().filter(|l| !l.starts_with('#') && !l.is_empty()).any(|c| c == lower || c == stripped) {
        return Err(Weakness::Common);
    }
    for word in personal {
        let word = word.to_lowercase();
        if word.chars().count() >= 3 && lower.contains(&word) {
            return Err(Weakness::Personal);
        }
    }
    let est = zxcvbn::zxcvbn(password, personal);
    if (est.score() as u8) < 3 {
        let hint = est.feedback().and_then(|f| f.warning()).map(|w| w.to_string()).unwrap_or_default();
        return Err(Weakness::Guessable(hint));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weak_passwords_are_refused_with_a_reason() {
        let me = ["tanaka.h", "田中 花子", "1310000001"];
        assert_eq!(check_strength("short", 12, &me), Err(Weakness::TooShort(12)));
        assert_eq!(check_strength("doraemon2024!", 12, &me), Err(Weakness::Common));
        assert_eq!(check_strength("Password123", 8, &me), Err(Weakness::Common));
        assert_eq!(check_strength("tanaka.h-secret-99", 12, &me), Err(Weakness::Personal));
        assert!(matches!(check_strength("aaaaaaaaaaaaaaaa", 12, &me), Err(Weakness::Guessable(_))));
        assert!(matches!(check_strength("qwertyuiop123456", 12, &me), Err(Weakness::Guessable(_)) | Err(Weakness::Common)));
        assert_eq!(check_strength("kaki-no-tane umbrella 83 orbit", 12, &me), Ok(()));
        assert!(Weakness::Common.to_string().contains("common password"));
    }

    #[tokio::test]
    async fn hash_and_verify() {
        let h = Hasher::new(HashCost::TEST, 1, 8);
        let phc = h.hash("correct horse battery staple").await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=256,t=1,p=1$"), "{phc}");
        assert!(h.verify("correct horse battery staple", &phc).await.unwrap());
        assert!(!h.verify("correct horse battery stapler", &phc).await.unwrap());
        assert!(
            h.matches_any(
                "correct horse battery staple",
                &["$argon2id$v=19$m=256,t=1,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into(), phc]
            )
            .await
            .unwrap()
        );
        // The default cost is the OWASP baseline.
        assert_eq!(HashCost::DEFAULT, HashCost { memory_kib: 19456, iterations: 2 });
    }

    #[tokio::test]
    async fn a_full_queue_is_refused_not_grown() {
        let h = Hasher::new(HashCost { memory_kib: 8 * 1024, iterations: 3 }, 1, 2);
        let mut tasks = Vec::new();
        for _ in 0..12 {
            let h = h.clone();
            tasks.push(tokio::spawn(async move { h.hash("correct horse battery staple").await }));
        }
        let mut busy = 0;
        for t in tasks {
            if matches!(t.await.unwrap(), Err(AccountsError::Busy)) {
                busy += 1;
            }
        }
        assert!(busy >= 1, "some attempts were refused when the queue was full");
    }
}
