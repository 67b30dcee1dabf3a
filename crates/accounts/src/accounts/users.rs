//! Institutions and users: creation, the lifecycle, locks, passwords (reset, change, the
//! forced change after a reset) and the periodic inventory (HX-6, HX-9).

use super::*;

impl Accounts {
    /// Adds an institution (or renames it, if the code exists).
    pub async fn add_institution(&self, who: &Who, code: &str, name: &str) -> Result<()> {
        valid_code(code)?;
        let mut tx = self.inner.db.begin_write().await?;
        sqlx::query(
            "INSERT INTO institutions (code, name, created_at) VALUES ($1, $2, $3) ON CONFLICT (code) DO UPDATE SET name = excluded.name",
        )
        .bind(code)
        .bind(name)
        .bind(self.now())
        .execute(&mut *tx)
        .await?;
        self.record(&mut tx, who, "institution.add", code, "ok", None).await?;
        self.committed(tx).await
    }

    /// Whether an institution exists.
    pub async fn institution_exists(&self, code: &str) -> Result<bool> {
        Ok(sqlx::query("SELECT 1 FROM institutions WHERE code = $1").bind(code).fetch_optional(self.inner.db.pool()).await?.is_some())
    }

    /// Creates a user. With a password (checked against the rules) the account is active at
    /// once; without one it is pending until a password is set and it is activated.
    pub async fn add_user(&self, who: &Who, new: &NewUser, password: Option<&str>) -> Result<User> {
        valid_login(&new.login)?;
        if !self.institution_exists(&new.institution).await? {
            return Err(AccountsError::NoInstitution(new.institution.clone()));
        }
        let hash = match password {
            Some(p) => {
                check_strength(p, self.inner.policy.min_password_len, &[&new.login, &new.name, &new.institution])
                    .map_err(AccountsError::WeakPassword)?;
                Some(self.inner.hasher.hash(p).await?)
            }
            None => None,
        };
        let state = if hash.is_some() { UserState::Active } else { UserState::Pending };
        let now = self.now();
        let mut tx = self.inner.db.begin_write().await?;
        if sqlx::query("SELECT 1 FROM users WHERE login = $1").bind(&new.login).fetch_optional(&mut *tx).await?.is_some() {
            return Err(AccountsError::Exists(new.login.clone()));
        }
        sqlx::query(
            "INSERT INTO users (login, institution, role, name, state, password_hash, password_changed_at, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
        )
        .bind(&new.login)
        .bind(&new.institution)
        .bind(new.role.as_str())
        .bind(&new.name)
        .bind(state.as_str())
        .bind(hash.clone())
        .bind(hash.as_ref().map(|_| now))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if let Some(h) = &hash {
            sqlx::query("INSERT INTO password_history (login, hash, set_at) VALUES ($1, $2, $3)")
                .bind(&new.login)
                .bind(h)
                .bind(now)
                .execute(&mut *tx)
                .await?;
        }
        self.record(
            &mut tx,
            who,
            "user.create",
            &new.login,
            "ok",
            Some(format!("role={} institution={} state={}", new.role, new.institution, state.as_str())),
        )
        .await?;
        self.committed(tx).await?;
        self.user(&new.login).await
    }

    pub(super) fn user_from_row(&self, r: &sqlx::any::AnyRow) -> Result<User> {
        let locked_until: Option<i64> = r.try_get("locked_until")?;
        Ok(User {
            login: r.try_get("login")?,
            institution: r.try_get("institution")?,
            role: r.try_get::<String, _>("role")?.parse()?,
            name: r.try_get("name")?,
            state: UserState::parse(&r.try_get::<String, _>("state")?)?,
            locked: locked_until.is_some_and(|t| t > self.now()),
            failed_logins: r.try_get("failed_logins")?,
            totp: r.try_get::<i64, _>("totp")? != 0,
            created_at: r.try_get("created_at")?,
            last_login_at: r.try_get("last_login_at")?,
        })
    }

    /// One user.
    pub async fn user(&self, login: &str) -> Result<User> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE login = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(login).fetch_optional(self.inner.db.pool()).await?;
        match row {
            Some(r) => self.user_from_row(&r),
            None => Err(AccountsError::NoUser(login.into())),
        }
    }

    /// Every user, by login.
    pub async fn users(&self) -> Result<Vec<User>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users ORDER BY login");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(self.inner.db.pool()).await?;
        rows.iter().map(|r| self.user_from_row(r)).collect()
    }

    /// Moves a user through the lifecycle ([`UserState::after`]). Suspending or disabling ends
    /// the user's sessions.
    pub async fn transition(&self, who: &Who, login: &str, t: Transition) -> Result<User> {
        let mut tx = self.inner.db.begin_write().await?;
        let row =
            sqlx::query("SELECT state, CASE WHEN password_hash IS NULL THEN 0 ELSE 1 END AS has_password FROM users WHERE login = $1")
                .bind(login)
                .fetch_optional(&mut *tx)
                .await?;
        let Some(row) = row else { return Err(AccountsError::NoUser(login.into())) };
        let from = UserState::parse(&row.try_get::<String, _>("state")?)?;
        let has_password = row.try_get::<i64, _>("has_password")? != 0;
        let bad = || AccountsError::BadTransition { login: login.into(), from: from.as_str(), action: t.as_str() };
        let to = from.after(t).ok_or_else(bad)?;
        if to == UserState::Active && !has_password {
            return Err(AccountsError::BadTransition { login: login.into(), from: "pending (no password)", action: t.as_str() });
        }
        sqlx::query("UPDATE users SET state = $1, updated_at = $2 WHERE login = $3")
            .bind(to.as_str())
            .bind(self.now())
            .bind(login)
            .execute(&mut *tx)
            .await?;
        if to != UserState::Active {
            self.end_sessions_in(&mut tx, login, None, &SessionEnd::AccountChanged).await?;
        }
        self.record(&mut tx, who, &format!("user.{}", t.as_str()), login, "ok", Some(format!("{} -> {}", from.as_str(), to.as_str())))
            .await?;
        self.committed(tx).await?;
        self.user(login).await
    }

    /// Locks an account now (until unlocked), ending its sessions.
    pub async fn lock(&self, who: &Who, login: &str) -> Result<()> {
        let mut tx = self.inner.db.begin_write().await?;
        let n = sqlx::query("UPDATE users SET locked_until = $1, updated_at = $2 WHERE login = $3")
            .bind(i64::MAX)
            .bind(self.now())
            .bind(login)
            .execute(&mut *tx)
            .await?;
        if n.rows_affected() == 0 {
            return Err(AccountsError::NoUser(login.into()));
        }
        self.end_sessions_in(&mut tx, login, None, &SessionEnd::AccountChanged).await?;
        self.record(&mut tx, who, "user.lock", login, "ok", Some("by operator".into())).await?;
        self.committed(tx).await
    }

    /// Unlocks an account and clears its failed-login count.
    pub async fn unlock(&self, who: &Who, login: &str) -> Result<()> {
        let mut tx = self.inner.db.begin_write().await?;
        let n = sqlx::query("UPDATE users SET locked_until = NULL, failed_logins = 0, updated_at = $1 WHERE login = $2")
            .bind(self.now())
            .bind(login)
            .execute(&mut *tx)
            .await?;
        if n.rows_affected() == 0 {
            return Err(AccountsError::NoUser(login.into()));
        }
        self.record(&mut tx, who, "user.unlock", login, "ok", None).await?;
        self.committed(tx).await
    }

    pub(super) async fn check_new_password(&self, login: &str, password: &str) -> Result<()> {
        let u = self.user(login).await?;
        let inst: Option<String> = sqlx::query_scalar("SELECT name FROM institutions WHERE code = $1")
            .bind(&u.institution)
            .fetch_optional(self.inner.db.pool())
            .await?;
        let inst = inst.unwrap_or_default();
        check_strength(password, self.inner.policy.min_password_len, &[login, &u.name, &u.institution, &inst])
            .map_err(AccountsError::WeakPassword)?;
        let recent: Vec<String> = sqlx::query_scalar("SELECT hash FROM password_history WHERE login = $1 ORDER BY set_at DESC LIMIT $2")
            .bind(login)
            .bind(self.inner.policy.password_history as i64)
            .fetch_all(self.inner.db.pool())
            .await?;
        if self.inner.hasher.matches_any(password, &recent).await? {
            return Err(AccountsError::WeakPassword(crate::Weakness::Reused(self.inner.policy.password_history)));
        }
        Ok(())
    }

    pub(super) async fn store_password(&self, tx: &mut AnyConnection, login: &str, hash: &str) -> Result<()> {
        let now = self.now();
        sqlx::query("UPDATE users SET password_hash = $1, password_changed_at = $2, updated_at = $2 WHERE login = $3")
            .bind(hash)
            .bind(now)
            .bind(login)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO password_history (login, hash, set_at) VALUES ($1, $2, $3)")
            .bind(login)
            .bind(hash)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        Ok(())
    }

    /// Sets a new password on a formal request (HX-6), if `by` may reset this user's password
    /// ([`Resetter::may_reset`]); recorded either way. The user must choose a new password at
    /// the next sign-in, after the second factor; their sessions end; the lock and failure
    /// count are cleared.
    ///
    /// A custodian is told the same for a user they may not reset as for a user that does not
    /// exist (nothing about logins or roles beyond their own institution's data roles), and
    /// their reset leaves a lock and the failure count as they are: only an operator lifts a
    /// lock (HIC-U4).
    pub async fn reset_password(&self, who: &Who, by: &Resetter, login: &str, password: &str) -> Result<()> {
        let custodian = matches!(by, Resetter::User { role: Role::Custodian, .. });
        let target = match self.user(login).await {
            Ok(t) => t,
            Err(AccountsError::NoUser(l)) => {
                self.record_refusal(who, "user.password_reset", "", "no such user").await?;
                return Err(AccountsError::NoUser(l));
            }
            Err(e) => return Err(e),
        };
        if !by.may_reset(&target) {
            self.record_refusal(who, "user.password_reset", login, "not permitted for this role").await?;
            let own = matches!(by, Resetter::User { login: l, .. } if *l == target.login);
            if custodian && !own {
                return Err(AccountsError::NoUser(login.into()));
            }
            return Err(AccountsError::NotPermitted(format!(
                "'{login}' のパスワードは再設定できません（自分自身のものは「アカウント」で変更）/ you may not reset the password of '{login}' (change your own under Account)"
            )));
        }
        self.check_new_password(login, password).await?;
        let hash = self.inner.hasher.hash(password).await?;
        let mut tx = self.inner.db.begin_write().await?;
        self.store_password(&mut tx, login, &hash).await?;
        let clear = if custodian { "" } else { ", failed_logins = 0, locked_until = NULL" };
        sqlx::query(sqlx::AssertSqlSafe(format!("UPDATE users SET must_change_password = 1{clear} WHERE login = $1")))
            .bind(login)
            .execute(&mut *tx)
            .await?;
        self.end_sessions_in(&mut tx, login, None, &SessionEnd::AccountChanged).await?;
        self.record(&mut tx, who, "user.password_reset", login, "ok", Some("must change at next sign-in".into())).await?;
        self.committed(tx).await
    }

    /// Whether the user's password was set by someone else and must be changed now.
    pub async fn must_change_password(&self, login: &str) -> Result<bool> {
        let v: Option<i64> = sqlx::query_scalar("SELECT must_change_password FROM users WHERE login = $1")
            .bind(login)
            .fetch_optional(self.inner.db.pool())
            .await?;
        Ok(v.unwrap_or(0) != 0)
    }

    /// The user changes their own password (the old one must be right). A wrong old password
    /// is a failed sign-in: it counts toward the lock like one, and the lock ends the session.
    pub async fn change_password(&self, who: &Who, login: &str, old: &str, new: &str) -> Result<()> {
        let (this, who, login) = (self.clone(), who.clone(), login.to_string());
        let (old, new) = (zeroize::Zeroizing::new(old.to_string()), zeroize::Zeroizing::new(new.to_string()));
        match tokio::spawn(async move { this.change_password_step(&who, &login, &old, &new).await }).await {
            Ok(r) => r,
            Err(e) => Err(AccountsError::Task(e)),
        }
    }

    pub(super) async fn change_password_step(&self, who: &Who, login: &str, old: &str, new: &str) -> Result<()> {
        let hash: Option<String> = sqlx::query_scalar("SELECT password_hash FROM users WHERE login = $1")
            .bind(login)
            .fetch_optional(self.inner.db.pool())
            .await?
            .flatten();
        let locked = || AccountsError::Locked(login.to_string());
        let n = match self.take_attempt(who, login).await? {
            Attempt::Counted(n) => n,
            Attempt::Locked(_) => return Err(locked()),
        };
        let ok = match &hash {
            Some(h) => self.inner.hasher.verify(old, h).await?,
            None => false,
        };
        if !ok {
            if self.fail_attempt(who, login, "user.password_change", n, "wrong current password").await? {
                return Err(locked());
            }
            return Err(AccountsError::Invalid {
                field: "current password",
                detail: "現在のパスワードが違います / the current password is wrong".into(),
            });
        }
        self.give_back_attempt(login).await?;
        self.check_new_password(login, new).await?;
        let hash = self.inner.hasher.hash(new).await?;
        let mut tx = self.inner.db.begin_write().await?;
        self.store_password(&mut tx, login, &hash).await?;
        self.record(&mut tx, who, "user.password_change", login, "ok", None).await?;
        self.committed(tx).await
    }

    /// The new password a user must choose after a reset, during sign-in (the session is at
    /// [`SessionState::NewPassword`], both factors done). The reset password itself is among
    /// the recent ones and cannot be kept.
    pub async fn set_new_password(&self, who: &Who, session: &Session, new: &str) -> Result<()> {
        if session.state != SessionState::NewPassword {
            return Err(AccountsError::Invalid { field: "session", detail: "no new password is due".into() });
        }
        self.check_new_password(&session.login, new).await?;
        let hash = self.inner.hasher.hash(new).await?;
        let mut tx = self.inner.db.begin_write().await?;
        self.store_password(&mut tx, &session.login, &hash).await?;
        sqlx::query("UPDATE users SET must_change_password = 0 WHERE login = $1").bind(&session.login).execute(&mut *tx).await?;
        self.record(&mut tx, who, "user.password_change", &session.login, "ok", Some("after a reset".into())).await?;
        self.committed(tx).await
    }

    /// Clears a user's second factor (lost device) so they enrol again at their next sign-in.
    pub async fn reset_second_factor(&self, who: &Who, login: &str) -> Result<()> {
        let mut tx = self.inner.db.begin_write().await?;
        let n = sqlx::query("UPDATE users SET totp_secret = NULL, totp_pending = NULL, updated_at = $1 WHERE login = $2")
            .bind(self.now())
            .bind(login)
            .execute(&mut *tx)
            .await?;
        if n.rows_affected() == 0 {
            return Err(AccountsError::NoUser(login.into()));
        }
        sqlx::query("DELETE FROM recovery_codes WHERE login = $1").bind(login).execute(&mut *tx).await?;
        self.end_sessions_in(&mut tx, login, None, &SessionEnd::AccountChanged).await?;
        self.record(&mut tx, who, "user.second_factor_reset", login, "ok", None).await?;
        self.committed(tx).await
    }

    /// The periodic account inventory (HX-9): every user with what needs a look.
    pub async fn inventory(&self) -> Result<Vec<InventoryRow>> {
        let now = self.now();
        let certs: Vec<(String, i64)> = sqlx::query_as(
            "SELECT login, count(*) FROM certificates WHERE login IS NOT NULL AND revoked_at IS NULL AND not_after > $1 GROUP BY login",
        )
        .bind(now)
        .fetch_all(self.inner.db.pool())
        .await?;
        let certs: std::collections::HashMap<String, i64> = certs.into_iter().collect();
        let mut out = Vec::new();
        for user in self.users().await? {
            let since = user.last_login_at.unwrap_or(user.created_at);
            let idle_days = (now - since).max(0) / 86_400;
            let n = certs.get(&user.login).copied().unwrap_or(0);
            let mut flags = Vec::new();
            if user.last_login_at.is_none() {
                flags.push("never_signed_in");
            }
            if idle_days >= 90 && user.state == UserState::Active {
                flags.push("idle_90_days");
            }
            if !user.totp && user.state == UserState::Active {
                flags.push("no_second_factor");
            }
            if user.locked {
                flags.push("locked");
            }
            if n == 0 && user.state == UserState::Active {
                flags.push("no_certificate");
            }
            out.push(InventoryRow { user, certificates: n, idle_days, flags });
        }
        Ok(out)
    }
}
