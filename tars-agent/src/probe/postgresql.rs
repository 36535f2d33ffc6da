//! PostgreSQL: connections, and replication lag on a replica.

use std::time::Duration;

use tars_telemetry::catalog::{POSTGRESQL_CONNECTIONS, POSTGRESQL_REPLICATION_LAG};

use super::{Findings, Probe};

/// Probes one PostgreSQL server through a libpq-style connection string
/// (`host=... port=... user=... dbname=...` or `postgresql://...`).
#[derive(Debug, Clone)]
pub struct PostgresProbe {
    url: String,
    target: String,
}

impl PostgresProbe {
    pub fn new(url: &str) -> Self {
        PostgresProbe {
            url: url.to_string(),
            target: redact(url),
        }
    }
}

/// The connection string with any password removed, fit for a label.
fn redact(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        let rest = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
        return format!("{scheme}://{}", rest.split('?').next().unwrap_or(rest));
    }
    url.split_ascii_whitespace()
        .filter(|kv| !kv.starts_with("password="))
        .collect::<Vec<_>>()
        .join(" ")
}

impl Probe for PostgresProbe {
    fn service(&self) -> &'static str {
        "postgresql"
    }

    fn target(&self) -> &str {
        &self.target
    }

    fn check(&mut self, timeout: Duration) -> Result<Findings, String> {
        let mut cfg: postgres::Config = self.url.parse().map_err(|e| format!("{e}"))?;
        cfg.connect_timeout(timeout);
        cfg.application_name("tars-agent");
        let mut client = cfg.connect(postgres::NoTls).map_err(|e| e.to_string())?;
        let row = client
            .query_one(
                "SELECT (SELECT count(*) FROM pg_stat_activity)::float8, \
                 CASE WHEN pg_is_in_recovery() \
                   THEN COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 0) \
                   ELSE 0 END::float8",
                &[],
            )
            .map_err(|e| e.to_string())?;
        let t = self.target.clone();
        Ok(vec![
            (
                &POSTGRESQL_CONNECTIONS,
                vec![t.clone()],
                row.get::<_, f64>(0),
            ),
            (&POSTGRESQL_REPLICATION_LAG, vec![t], row.get::<_, f64>(1)),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_never_reach_labels() {
        assert_eq!(
            redact("postgresql://tars:secret@db:5432/rag?sslmode=disable"),
            "postgresql://db:5432/rag"
        );
        assert_eq!(
            redact("host=db user=tars password=secret dbname=rag"),
            "host=db user=tars dbname=rag"
        );
    }
}
