//! Signing in: attempts and locks, the password step, the second factor and its enrolment
//! (HIC-S3, HIC-U3).

use super::*;

impl Accounts {
    pub(super) fn lock_until(&self) -> i64 {
        match self.inner.policy.lock_for {
            Some(d) => self.now() + d.as_secs() as i64,
            None => i64::MAX,
        }
    }

    /// Takes one attempt from the account's budget, atomically and before any secret is
    /// checked (HIC-U3): however many guesses arrive at once, at most the threshold of them
    /// are ever checked before the lock lands. A timed lock that has run out starts the count
    /// again. An attempt beyond the threshold locks the account at once.
    pub(super) async fn take_attempt(&self, who: &Who, login: &str) -> Result<Attempt> {
        let now = self.now();
        let mut tx = self.inner.db.begin_write().await?;
        let n: Option<i64> = sqlx::query_scalar(
            "UPDATE users SET \
               failed_logins = CASE WHEN locked_until IS NOT NULL AND locked_until <= $2 THEN 1 ELSE failed_logins + 1 END, \
               locked_until = CASE WHEN locked_until IS NOT NULL AND locked_until <= $2 THEN NULL ELSE locked_until END \
             WHERE login = $1 AND (locked_until IS NULL OR locked_until <= $2) RETURNING failed_logins",
        )
        .bind(login)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        match n {
            None => {
                let until: Option<i64> = sqlx::query_scalar("SELECT locked_until FROM users WHERE login = $1")
                    .bind(login)
                    .fetch_optional(&mut *tx)
                    .await?
                    .flatten();
                tx.commit().await?;
                Ok(Attempt::Locked(until.filter(|t| *t != i64::MAX)))
            }
            Some(n) if n > i64::from(self.inner.policy.lockout_threshold) => {
                let until = self.lock_until();
                sqlx::query("UPDATE users SET locked_until = $1 WHERE login = $2").bind(until).bind(login).execute(&mut *tx).await?;
                self.end_sessions_in(&mut tx, login, None, &SessionEnd::AccountChanged).await?;
                self.record(&mut tx, who, "user.lock", login, "ok", Some(format!("{} attempts at once", n - 1))).await?;
                self.committed(tx).await?;
                Ok(Attempt::Locked((until != i64::MAX).then_some(until)))
            }
            Some(n) => {
                tx.commit().await?;
                Ok(Attempt::Counted(n))
            }
        }
    }

    /// The attempt's secret was wrong: records failure `n` and locks the account when `n`
    /// reaches the threshold. Returns whether the account is now locked.
    pub(super) async fn fail_attempt(&self, who: &Who, login: &str, step: &str, n: i64, why: &str) -> Result<bool> {
        let threshold = i64::from(self.inner.policy.lockout_threshold);
        let mut tx = self.inner.db.begin_write().await?;
        self.record(&mut tx, who, step, login, "denied", Some(format!("failure {n} of {threshold}: {why}"))).await?;
        let locked = n >= threshold;
        if locked {
            let now = self.now();
            let changed =
                sqlx::query("UPDATE users SET locked_until = $1 WHERE login = $2 AND (locked_until IS NULL OR locked_until <= $3)")
                    .bind(self.lock_until())
                    .bind(login)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
            if changed.rows_affected() == 1 {
                self.end_sessions_in(&mut tx, login, None, &SessionEnd::AccountChanged).await?;
                self.record(&mut tx, who, "user.lock", login, "ok", Some(format!("{n} failed sign-ins"))).await?;
            }
        }
        self.committed(tx).await?;
        Ok(locked)
    }

    /// The attempt's secret was right: gives the attempt back (a full sign-in clears the count).
    pub(super) async fn give_back_attempt(&self, login: &str) -> Result<()> {
        let mut tx = self.inner.db.begin_write().await?;
        sqlx::query("UPDATE users SET failed_logins = CASE WHEN failed_logins > 0 THEN failed_logins - 1 ELSE 0 END WHERE login = $1")
            .bind(login)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Whether the user may pass the first factor again now: at most
    /// [`FIRST_FACTORS_PER_WINDOW`] times per [`FIRST_FACTOR_WINDOW`] seconds, so that even the
    /// right password cannot be used to fill the ledger and the sessions table.
    pub(super) fn first_factor_allowed(&self, login: &str) -> bool {
        let now = self.now();
        let mut seen = self.inner.first_factors.lock().unwrap_or_else(|e| e.into_inner());
        if seen.len() >= SESSION_CACHE_MAX {
            seen.retain(|_, t| t.back().is_some_and(|last| now - last < FIRST_FACTOR_WINDOW));
        }
        let times = seen.entry(login.to_string()).or_default();
        while times.front().is_some_and(|t| now - t >= FIRST_FACTOR_WINDOW) {
            times.pop_front();
        }
        if times.len() >= FIRST_FACTORS_PER_WINDOW {
            return false;
        }
        times.push_back(now);
        true
    }

    pub(super) fn lock_refusal(until: Option<i64>) -> LoginRefused {
        LoginRefused::Locked { until }
    }

    /// A `Who` whose user is a well-formed login (an attacker's text never reaches the ledger).
    pub(super) fn checked_who(who: &Who) -> Who {
        let mut w = who.clone();
        if valid_login(&w.actor.user).is_err() {
            w.actor.user.clear();
        }
        w
    }

    /// First factor: the password, with the client certificate the request came with.
    ///
    /// Every failure before a correct password with a matching certificate — malformed or
    /// unknown login, another user's login, wrong password, locked account — is the same
    /// [`LoginRefused::BadCredentials`], after one Argon2 verification, answered no sooner than
    /// [`Policy::failure_floor`](crate::Policy::failure_floor) after the request (status, body
    /// and timing alike). Only the right password with a matching certificate learns that the
    /// account is suspended or disabled.
    ///
    /// A certificate matches when it is the user's own, or — for users with the provider role
    /// only — a machine certificate of the user's institution (machine-to-machine uploads). An
    /// institution's machine certificate never signs in a researcher, custodian, reviewer,
    /// operator or auditor.
    pub async fn check_password(
        &self,
        who: &Who,
        login: &str,
        password: &str,
        fingerprint: &str,
    ) -> std::result::Result<PasswordOk, LoginRefused> {
        let started = tokio::time::Instant::now();
        let (this, who) = (self.clone(), Self::checked_who(who));
        let (login, password, fingerprint) = (login.to_string(), zeroize::Zeroizing::new(password.to_string()), fingerprint.to_string());
        let out = detached(async move { this.password_step(&who, &login, &password, &fingerprint).await }).await;
        if matches!(out, Err(LoginRefused::BadCredentials)) {
            tokio::time::sleep_until(started + self.inner.policy.failure_floor).await;
        }
        out
    }

    pub(super) async fn dummy_verify(&self, password: &str) -> std::result::Result<(), LoginRefused> {
        match self.inner.hasher.verify(password, &self.inner.dummy_hash).await {
            Ok(_) => Ok(()),
            Err(AccountsError::Busy) => Err(LoginRefused::Busy),
            Err(e) => Err(e.into()),
        }
    }

    pub(super) async fn password_step(
        &self,
        who: &Who,
        login: &str,
        password: &str,
        fingerprint: &str,
    ) -> std::result::Result<PasswordOk, LoginRefused> {
        let anonymous = Who { actor: Actor { user: String::new(), ..who.actor.clone() }, request: who.request.clone() };
        if valid_login(login).is_err() {
            self.dummy_verify(password).await?;
            self.record_refusal(&anonymous, "auth.password", "", "malformed login").await?;
            return Err(LoginRefused::BadCredentials);
        }
        let row = sqlx::query(
            "SELECT state, password_hash, institution, role, CASE WHEN totp_secret IS NULL THEN 0 ELSE 1 END AS enrolled, must_change_password \
             FROM users WHERE login = $1",
        )
        .bind(login)
        .fetch_optional(self.inner.db.pool())
        .await?;
        let Some(row) = row else {
            // Same work as for a real user, so timing does not reveal which logins exist.
            self.dummy_verify(password).await?;
            self.record_refusal(&anonymous, "auth.password", "", "unknown login").await?;
            return Err(LoginRefused::BadCredentials);
        };
        let state = UserState::parse(&row.try_get::<String, _>("state")?)?;
        let hash: Option<String> = row.try_get("password_hash")?;
        let institution: String = row.try_get("institution")?;
        let role: Role = row.try_get::<String, _>("role")?.parse()?;
        let enrolled = row.try_get::<i64, _>("enrolled")? != 0;
        let must_change = row.try_get::<i64, _>("must_change_password")? != 0;
        // Only a certificate that could sign this user in counts against their account: with
        // anyone else's the attempt can never succeed, and counting it would let any holder of a
        // certificate lock any account. The answer is the same either way.
        let now = self.now();
        let cert_ok = self.certificate(fingerprint).await?.is_some_and(|c| {
            c.revoked_at.is_none()
                && c.not_after > now
                && match c.login {
                    Some(l) => l == login,
                    None => c.institution == institution && role == Role::Provider,
                }
        });
        if !cert_ok {
            self.dummy_verify(password).await?;
            self.record_refusal(who, "auth.password", login, "certificate not issued to this user").await?;
            return Err(LoginRefused::BadCredentials);
        }
        let n = match self.take_attempt(who, login).await? {
            Attempt::Counted(n) => n,
            Attempt::Locked(_) => {
                self.dummy_verify(password).await?;
                self.record_refusal(who, "auth.password", login, "account locked").await?;
                return Err(LoginRefused::BadCredentials);
            }
        };
        let ok = match &hash {
            Some(h) => match self.inner.hasher.verify(password, h).await {
                Ok(ok) => ok,
                Err(AccountsError::Busy) => {
                    self.give_back_attempt(login).await?;
                    return Err(LoginRefused::Busy);
                }
                Err(e) => return Err(e.into()),
            },
            None => {
                self.dummy_verify(password).await?;
                false
            }
        };
        if !ok {
            self.fail_attempt(who, login, "auth.password", n, "wrong password").await?;
            return Err(LoginRefused::BadCredentials);
        }
        self.give_back_attempt(login).await?;
        if state != UserState::Active {
            self.record_refusal(who, "auth.password", login, &format!("account {}", state.as_str())).await?;
            return Err(LoginRefused::NotActive(state.as_str()));
        }
        if !self.first_factor_allowed(login) {
            self.record_refusal(who, "auth.password", login, "too many sign-ins").await?;
            return Err(LoginRefused::TooFrequent);
        }
        self.record_event(who, "auth.password", login, "ok", None).await?;
        Ok(PasswordOk { enrolled, must_change })
    }

    pub(super) fn totp_aad(login: &str) -> Vec<u8> {
        format!("kura/totp/v1\0{login}").into_bytes()
    }

    pub(super) fn recovery_mac(&self, login: &str, code: &str) -> String {
        #[allow(clippy::expect_used, reason = "HMAC takes keys of any length (RFC 2104): new_from_slice cannot fail")]
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.inner.key.expose()).expect("HMAC takes keys of any length");
        mac.update(b"kura/recovery/v1\0");
        mac.update(login.as_bytes());
        mac.update(b"\0");
        mac.update(code.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    pub(super) fn normalise_recovery(code: &str) -> String {
        code.chars().filter(|c| c.is_ascii_alphanumeric()).map(|c| c.to_ascii_lowercase()).collect()
    }

    /// Second factor: a TOTP code, or one of the user's unused recovery codes (used up by this).
    /// The attempt is counted before the code is checked, like a password; a locked account is
    /// told it is locked whatever the code (the password was right, so telling is safe).
    pub async fn check_second_factor(&self, who: &Who, login: &str, code: &str) -> std::result::Result<(), LoginRefused> {
        let (this, who, login, code) = (self.clone(), who.clone(), login.to_string(), code.to_string());
        detached(async move { this.second_factor_step(&who, &login, &code).await }).await
    }

    pub(super) async fn second_factor_step(&self, who: &Who, login: &str, code: &str) -> std::result::Result<(), LoginRefused> {
        let row = sqlx::query("SELECT totp_secret, totp_last_step FROM users WHERE login = $1")
            .bind(login)
            .fetch_optional(self.inner.db.pool())
            .await?;
        let Some(row) = row else { return Err(LoginRefused::BadCredentials) };
        let sealed: Option<Vec<u8>> = row.try_get("totp_secret")?;
        let last_step: i64 = row.try_get("totp_last_step")?;
        let n = match self.take_attempt(who, login).await? {
            Attempt::Counted(n) => n,
            Attempt::Locked(until) => {
                self.record_refusal(who, "auth.second_factor", login, "account locked").await?;
                return Err(Self::lock_refusal(until));
            }
        };
        let accepted = match sealed {
            None => false,
            Some(sealed) => self.second_factor_accepted(who, login, &sealed, last_step, code).await?,
        };
        if !accepted {
            if self.fail_attempt(who, login, "auth.second_factor", n, "wrong or used code").await? {
                let until = self.lock_until();
                return Err(Self::lock_refusal((until != i64::MAX).then_some(until)));
            }
            return Err(LoginRefused::BadCode);
        }
        self.give_back_attempt(login).await?;
        Ok(())
    }

    pub(super) async fn second_factor_accepted(&self, who: &Who, login: &str, sealed: &[u8], last_step: i64, code: &str) -> Result<bool> {
        let secret = kura_crypto::open_sealed(&self.inner.key, &Self::totp_aad(login), sealed)?;
        let digits = code.trim();
        if digits.len() == totp::DIGITS as usize && digits.bytes().all(|b| b.is_ascii_digit()) {
            return match totp::verify(&secret, digits, self.now().max(0) as u64, last_step.max(0) as u64) {
                // The step is taken only if no one took it in between (replay across requests).
                Some(step) => {
                    let mut tx = self.inner.db.begin_write().await?;
                    let n = sqlx::query("UPDATE users SET totp_last_step = $1 WHERE login = $2 AND totp_last_step < $1")
                        .bind(step as i64)
                        .bind(login)
                        .execute(&mut *tx)
                        .await?;
                    if n.rows_affected() == 1 {
                        self.record(&mut tx, who, "auth.second_factor", login, "ok", Some("totp".into())).await?;
                    }
                    self.committed(tx).await?;
                    Ok(n.rows_affected() == 1)
                }
                None => Ok(false),
            };
        }
        let mac = self.recovery_mac(login, &Self::normalise_recovery(code));
        let mut tx = self.inner.db.begin_write().await?;
        let n = sqlx::query("UPDATE recovery_codes SET used_at = $1 WHERE login = $2 AND code_mac = $3 AND used_at IS NULL")
            .bind(self.now())
            .bind(login)
            .bind(&mac)
            .execute(&mut *tx)
            .await?;
        if n.rows_affected() == 1 {
            let left: i64 = sqlx::query_scalar("SELECT count(*) FROM recovery_codes WHERE login = $1 AND used_at IS NULL")
                .bind(login)
                .fetch_one(&mut *tx)
                .await?;
            self.record(&mut tx, who, "auth.second_factor", login, "ok", Some(format!("recovery code ({left} left)"))).await?;
        }
        self.committed(tx).await?;
        Ok(n.rows_affected() == 1)
    }

    /// Starts TOTP enrolment: a new secret, kept sealed as pending until a code from it is
    /// confirmed. While one is pending it is shown again (after a mistyped code or a reload the
    /// user's authenticator app already holds it); a reset of the second factor discards it.
    pub async fn begin_enrolment(&self, login: &str) -> Result<Enrolment> {
        let u = self.user(login).await?;
        let pending: Option<Vec<u8>> = sqlx::query_scalar("SELECT totp_pending FROM users WHERE login = $1")
            .bind(login)
            .fetch_optional(self.inner.db.pool())
            .await?
            .flatten();
        let secret = match pending {
            Some(sealed) => kura_crypto::open_sealed(&self.inner.key, &Self::totp_aad(login), &sealed)?,
            None => {
                let mut secret = zeroize::Zeroizing::new(vec![0u8; totp::SECRET_LEN]);
                kura_crypto::random_bytes(&mut secret[..])?;
                let sealed = kura_crypto::seal(&self.inner.key, &Self::totp_aad(login), &secret[..])?;
                let mut tx = self.inner.db.begin_write().await?;
                sqlx::query("UPDATE users SET totp_pending = $1 WHERE login = $2").bind(sealed).bind(login).execute(&mut *tx).await?;
                tx.commit().await?;
                secret
            }
        };
        let uri = totp::provisioning_uri(&self.inner.policy.issuer, &format!("{}@{}", u.login, u.institution), &secret[..]);
        let qr_svg = totp::qr_svg(&uri).map_err(|e| AccountsError::Internal(format!("QR code: {e}")))?;
        Ok(Enrolment { secret_base32: totp::base32(&secret[..]), uri, qr_svg })
    }

    /// Confirms enrolment with a code from the pending secret; returns the recovery codes, shown
    /// once (only their MACs are kept).
    pub async fn finish_enrolment(&self, who: &Who, login: &str, code: &str) -> std::result::Result<Vec<String>, LoginRefused> {
        let (this, who, login, code) = (self.clone(), who.clone(), login.to_string(), code.to_string());
        detached(async move { this.enrolment_step(&who, &login, &code).await }).await
    }

    pub(super) async fn enrolment_step(&self, who: &Who, login: &str, code: &str) -> std::result::Result<Vec<String>, LoginRefused> {
        let pending: Option<Vec<u8>> = sqlx::query_scalar("SELECT totp_pending FROM users WHERE login = $1")
            .bind(login)
            .fetch_optional(self.inner.db.pool())
            .await?
            .flatten();
        let Some(sealed) = pending else { return Err(LoginRefused::BadCode) };
        let secret = kura_crypto::open_sealed(&self.inner.key, &Self::totp_aad(login), &sealed)?;
        let n = match self.take_attempt(who, login).await? {
            Attempt::Counted(n) => n,
            Attempt::Locked(until) => {
                self.record_refusal(who, "auth.totp_enrol", login, "account locked").await?;
                return Err(Self::lock_refusal(until));
            }
        };
        let Some(step) = totp::verify(&secret, code, self.now().max(0) as u64, 0) else {
            if self.fail_attempt(who, login, "auth.totp_enrol", n, "wrong code").await? {
                let until = self.lock_until();
                return Err(Self::lock_refusal((until != i64::MAX).then_some(until)));
            }
            return Err(LoginRefused::BadCode);
        };
        self.give_back_attempt(login).await?;
        let mut codes = Vec::new();
        let mut tx = self.inner.db.begin_write().await?;
        sqlx::query(
            "UPDATE users SET totp_secret = totp_pending, totp_pending = NULL, totp_last_step = $1, updated_at = $2 WHERE login = $3",
        )
        .bind(step as i64)
        .bind(self.now())
        .bind(login)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM recovery_codes WHERE login = $1").bind(login).execute(&mut *tx).await?;
        for _ in 0..self.inner.policy.recovery_codes {
            // 10 characters of base32: 50 bits, written xxxxx-xxxxx.
            let mut b = [0u8; 7];
            kura_crypto::random_bytes(&mut b)?;
            let raw = totp::base32(&b)[..10].to_ascii_lowercase();
            sqlx::query("INSERT INTO recovery_codes (login, code_mac) VALUES ($1, $2)")
                .bind(login)
                .bind(self.recovery_mac(login, &raw))
                .execute(&mut *tx)
                .await?;
            codes.push(format!("{}-{}", &raw[..5], &raw[5..]));
        }
        self.record(&mut tx, who, "auth.totp_enrol", login, "ok", Some(format!("{} recovery codes issued", codes.len()))).await?;
        self.committed(tx).await?;
        Ok(codes)
    }
}
