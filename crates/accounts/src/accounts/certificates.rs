//! Client certificates: registration, revocation and their records (HX-5, HIC-S4).

use super::*;

impl Accounts {
    /// Records a certificate the CA issued.
    #[allow(clippy::too_many_arguments)]
    pub async fn register_certificate(
        &self,
        who: &Who,
        fingerprint: &str,
        serial: &str,
        login: Option<&str>,
        institution: &str,
        not_after: i64,
    ) -> Result<()> {
        let kind = if login.is_some() { "user" } else { "institution" };
        let mut tx = self.inner.db.begin_write().await?;
        sqlx::query(
            "INSERT INTO certificates (fingerprint, serial, kind, login, institution, issued_at, not_after) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(fingerprint)
        .bind(serial)
        .bind(kind)
        .bind(login)
        .bind(institution)
        .bind(self.now())
        .bind(not_after)
        .execute(&mut *tx)
        .await?;
        self.record(
            &mut tx,
            who,
            "cert.issue",
            login.unwrap_or(institution),
            "ok",
            Some(format!("{kind} certificate {fingerprint} serial {serial}")),
        )
        .await?;
        self.committed(tx).await
    }

    /// Revokes every unrevoked certificate of a user (or, with `login` = `None`, of an
    /// institution's machine certificates); returns them.
    pub async fn revoke_certificates(&self, who: &Who, login: Option<&str>, institution: Option<&str>) -> Result<Vec<RevokedCert>> {
        let mut tx = self.inner.db.begin_write().await?;
        let rows: Vec<(String, String)> =
            match (login, institution) {
                (Some(l), _) => {
                    sqlx::query_as("SELECT fingerprint, serial FROM certificates WHERE login = $1 AND revoked_at IS NULL")
                        .bind(l)
                        .fetch_all(&mut *tx)
                        .await?
                }
                (None, Some(i)) => sqlx::query_as(
                    "SELECT fingerprint, serial FROM certificates WHERE kind = 'institution' AND institution = $1 AND revoked_at IS NULL",
                )
                .bind(i)
                .fetch_all(&mut *tx)
                .await?,
                (None, None) => return Err(AccountsError::Invalid { field: "revoke", detail: "name a user or an institution".into() }),
            };
        let revoked: Vec<RevokedCert> = rows.into_iter().map(|(fingerprint, serial)| RevokedCert { fingerprint, serial }).collect();
        let fps: Vec<&String> = revoked.iter().map(|r| &r.fingerprint).collect();
        for fp in &fps {
            sqlx::query("UPDATE certificates SET revoked_at = $1 WHERE fingerprint = $2")
                .bind(self.now())
                .bind(fp)
                .execute(&mut *tx)
                .await?;
            sqlx::query("UPDATE sessions SET ended_at = $1, ended_reason = 'account_changed' WHERE fingerprint = $2 AND ended_at IS NULL")
                .bind(self.now())
                .bind(fp)
                .execute(&mut *tx)
                .await?;
            self.record(&mut tx, who, "cert.revoke", login.or(institution).unwrap_or(""), "ok", Some(fp.to_string())).await?;
        }
        self.committed(tx).await?;
        Ok(revoked)
    }

    /// Serials of every revoked certificate (loaded into the TLS layer's revocation set, which
    /// goes by serial: see `kura_pki::Serial`).
    pub async fn revoked_serials(&self) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar("SELECT serial FROM certificates WHERE revoked_at IS NOT NULL").fetch_all(self.inner.db.pool()).await?)
    }

    /// A certificate's record.
    pub async fn certificate(&self, fingerprint: &str) -> Result<Option<CertRecord>> {
        let row = sqlx::query("SELECT fingerprint, serial, kind, login, institution, issued_at, not_after, revoked_at FROM certificates WHERE fingerprint = $1")
            .bind(fingerprint)
            .fetch_optional(self.inner.db.pool())
            .await?;
        row.map(|r| -> Result<CertRecord> {
            Ok(CertRecord {
                fingerprint: r.try_get("fingerprint")?,
                serial: r.try_get("serial")?,
                kind: r.try_get("kind")?,
                login: r.try_get("login")?,
                institution: r.try_get("institution")?,
                issued_at: r.try_get("issued_at")?,
                not_after: r.try_get("not_after")?,
                revoked_at: r.try_get("revoked_at")?,
            })
        })
        .transpose()
    }
}
