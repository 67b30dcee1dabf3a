//! Sessions: start, lookup bound to the certificate and listener, timeouts, the second-device
//! confirmation and their end (HIC-U2, HX-11).

use super::*;

impl Accounts {
    /// Starts a session after the password on `listener` (`portal` or `operator`, where alone
    /// it will be served); returns the token for the cookie.
    pub async fn start_session(
        &self,
        who: &Who,
        login: &str,
        fingerprint: &str,
        listener: &str,
        state: SessionState,
    ) -> Result<(String, Session)> {
        let token = random_token(32)?;
        let id = sha256_hex(token.as_bytes());
        let csrf = random_token(32)?;
        let now = self.now();
        let expires = now + self.inner.policy.absolute_timeout.as_secs() as i64;
        let mut tx = self.inner.db.begin_write().await?;
        // A new sign-in supersedes the user's sign-ins left half-way: the table holds at most
        // one unfinished session per user.
        sqlx::query("UPDATE sessions SET ended_at = $1, ended_reason = $2 WHERE login = $3 AND state <> 'active' AND ended_at IS NULL")
            .bind(now)
            .bind(SessionEnd::Superseded.as_str())
            .bind(login)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO sessions (token_hash, login, fingerprint, state, csrf, created_at, last_seen_at, expires_at, listener) \
             VALUES ($1, $2, $3, $4, $5, $6, $6, $7, $8)",
        )
        .bind(&id)
        .bind(login)
        .bind(fingerprint)
        .bind(state.as_str())
        .bind(&csrf)
        .bind(now)
        .bind(expires)
        .bind(listener)
        .execute(&mut *tx)
        .await?;
        self.record(&mut tx, who, "session.start", login, "ok", Some(format!("session {} state {}", &id[..16], state.as_str()))).await?;
        self.committed(tx).await?;
        let (session, _) = self.load_session(&id).await?.map_err(|_| AccountsError::Internal("new session not found".into()))?;
        Ok((token, session))
    }

    /// A session with whether its account may still be used (active and not locked), in one
    /// query: this runs on every request.
    pub(super) async fn load_session(&self, id: &str) -> Result<std::result::Result<(Session, bool), SessionEnd>> {
        let row = sqlx::query(
            "SELECT s.login, u.institution, u.role, u.name, s.fingerprint, s.state, s.csrf, s.created_at, s.last_seen_at, s.expires_at, \
             s.ended_at, s.ended_reason, u.state AS user_state, u.locked_until, s.listener FROM sessions s JOIN users u ON u.login = s.login \
             WHERE s.token_hash = $1",
        )
        .bind(id)
        .fetch_optional(self.inner.db.pool())
        .await?;
        let Some(r) = row else { return Ok(Err(SessionEnd::Unknown)) };
        if let Some(at) = r.try_get::<Option<i64>, _>("ended_at")? {
            return Ok(Err(SessionEnd::parse(&r.try_get::<Option<String>, _>("ended_reason")?.unwrap_or_default(), at)));
        }
        let state =
            SessionState::parse(&r.try_get::<String, _>("state")?).ok_or_else(|| AccountsError::Internal("stored session state".into()))?;
        let usable = UserState::parse(&r.try_get::<String, _>("user_state")?)? == UserState::Active
            && r.try_get::<Option<i64>, _>("locked_until")?.is_none_or(|until| until <= self.now());
        let session = Session {
            id: id.into(),
            login: r.try_get("login")?,
            institution: r.try_get("institution")?,
            role: r.try_get::<String, _>("role")?.parse()?,
            name: r.try_get("name")?,
            fingerprint: r.try_get("fingerprint")?,
            listener: r.try_get("listener")?,
            state,
            csrf: r.try_get("csrf")?,
            created_at: r.try_get("created_at")?,
            last_seen_at: r.try_get("last_seen_at")?,
            expires_at: r.try_get("expires_at")?,
        };
        Ok(Ok((session, usable)))
    }

    /// The live session of a cookie token presented with the certificate `fingerprint` on
    /// `listener`, or why there is none. A session of the other listener is no session here
    /// (and is left alone). A session presented with another certificate, idle too long, past
    /// its absolute end or whose account is no longer usable is ended here (and recorded).
    /// `touch` records activity (resets the idle timer).
    pub async fn session(
        &self,
        who: &Who,
        token: &str,
        fingerprint: &str,
        listener: &str,
        touch: bool,
    ) -> Result<std::result::Result<Session, SessionEnd>> {
        let id = sha256_hex(token.as_bytes());
        let now = self.now();
        let cache = &self.inner.sessions;
        let (mut s, usable) = match cache.fresh(&id, now) {
            Some(c) => (c.session, c.usable),
            None => {
                let generation = cache.generation.load(Ordering::Acquire);
                match self.load_session(&id).await? {
                    Ok((s, usable)) => {
                        cache.put(CachedSession { session: s.clone(), usable, read_at: now, generation });
                        (s, usable)
                    }
                    Err(end) => return Ok(Err(end)),
                }
            }
        };
        if s.listener != listener {
            return Ok(Err(SessionEnd::Unknown));
        }
        let end = if s.fingerprint != fingerprint {
            Some(SessionEnd::CertificateMismatch)
        } else if now - s.last_seen_at > self.inner.policy.idle_timeout.as_secs() as i64 {
            Some(SessionEnd::Idle)
        } else if now >= s.expires_at {
            Some(SessionEnd::Absolute)
        } else {
            (!usable).then_some(SessionEnd::AccountChanged)
        };
        if let Some(end) = end {
            self.end_session(who, &s, end.clone()).await?;
            return Ok(Err(end));
        }
        if touch && now - s.last_seen_at >= TOUCH_EVERY {
            sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE token_hash = $2 AND ended_at IS NULL")
                .bind(now)
                .bind(&id)
                .execute(self.inner.db.pool())
                .await?;
            s.last_seen_at = now;
            if let Some(mut c) = cache.fresh(&id, now) {
                c.session.last_seen_at = now;
                cache.put(c);
            }
        }
        Ok(Ok(Session { last_seen_at: if touch { now } else { s.last_seen_at }, ..s }))
    }

    /// Moves a session to `state` (after a second factor, an enrolment, a new password or a
    /// confirmation) under a new token, returned for the cookie: the token the session had
    /// before the step no longer works.
    pub async fn advance_session(&self, who: &Who, session: &Session, state: SessionState) -> Result<String> {
        let token = random_token(32)?;
        let id = sha256_hex(token.as_bytes());
        let mut tx = self.inner.db.begin_write().await?;
        let n = sqlx::query("UPDATE sessions SET token_hash = $1, state = $2 WHERE token_hash = $3 AND ended_at IS NULL")
            .bind(&id)
            .bind(state.as_str())
            .bind(&session.id)
            .execute(&mut *tx)
            .await?;
        if n.rows_affected() != 1 {
            return Err(AccountsError::Invalid { field: "session", detail: "the session has ended: sign in again".into() });
        }
        if state == SessionState::Active {
            sqlx::query("UPDATE users SET failed_logins = 0, last_login_at = $1 WHERE login = $2")
                .bind(self.now())
                .bind(&session.login)
                .execute(&mut *tx)
                .await?;
        }
        self.record(
            &mut tx,
            who,
            "session.state",
            &session.login,
            "ok",
            Some(format!("session {} -> {} {}", &session.id[..16], &id[..16], state.as_str())),
        )
        .await?;
        self.committed(tx).await?;
        Ok(token)
    }

    /// The user's other signed-in sessions: (started at, certificate fingerprint).
    pub async fn other_sessions(&self, session: &Session) -> Result<Vec<(i64, String)>> {
        let now = self.now();
        let idle = self.inner.policy.idle_timeout.as_secs() as i64;
        Ok(sqlx::query_as(
            "SELECT created_at, fingerprint FROM sessions WHERE login = $1 AND token_hash <> $2 AND ended_at IS NULL AND state = 'active' \
             AND expires_at > $3 AND last_seen_at >= $4 ORDER BY created_at",
        )
        .bind(&session.login)
        .bind(&session.id)
        .bind(now)
        .bind(now - idle)
        .fetch_all(self.inner.db.pool())
        .await?)
    }

    /// The user confirmed signing in here although signed in elsewhere (HX-11): the other
    /// sessions end as "replaced" — they are told so at their next request — and this one is
    /// active.
    /// Returns how many other sessions ended, and the session's new token.
    pub async fn confirm_session(&self, who: &Who, session: &Session) -> Result<(usize, String)> {
        let mut tx = self.inner.db.begin_write().await?;
        let n = self.end_sessions_in(&mut tx, &session.login, Some(&session.id), &SessionEnd::Replaced(self.now())).await?;
        self.record(&mut tx, who, "session.confirm", &session.login, "ok", Some(format!("{n} other session(s) ended"))).await?;
        self.committed(tx).await?;
        let token = self.advance_session(who, session, SessionState::Active).await?;
        Ok((n, token))
    }

    /// Ends one session.
    pub async fn end_session(&self, who: &Who, session: &Session, why: SessionEnd) -> Result<()> {
        let mut tx = self.inner.db.begin_write().await?;
        sqlx::query("UPDATE sessions SET ended_at = $1, ended_reason = $2 WHERE token_hash = $3 AND ended_at IS NULL")
            .bind(self.now())
            .bind(why.as_str())
            .bind(&session.id)
            .execute(&mut *tx)
            .await?;
        let outcome = if why == SessionEnd::CertificateMismatch { "denied" } else { "ok" };
        self.record(&mut tx, who, "session.end", &session.login, outcome, Some(format!("session {} {}", &session.id[..16], why.as_str())))
            .await?;
        self.committed(tx).await
    }

    pub(super) async fn end_sessions_in(
        &self,
        conn: &mut AnyConnection,
        login: &str,
        except: Option<&str>,
        why: &SessionEnd,
    ) -> Result<usize> {
        let n =
            sqlx::query("UPDATE sessions SET ended_at = $1, ended_reason = $2 WHERE login = $3 AND ended_at IS NULL AND token_hash <> $4")
                .bind(self.now())
                .bind(why.as_str())
                .bind(login)
                .bind(except.unwrap_or(""))
                .execute(&mut *conn)
                .await?;
        Ok(n.rows_affected() as usize)
    }
}
