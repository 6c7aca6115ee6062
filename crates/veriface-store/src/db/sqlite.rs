//! What is particular to SQLite: the file URL, the per-connection pragmas,
//! and the claim query without row locks (SQLite runs one writer at a time,
//! so a single `UPDATE ... RETURNING` is already exclusive).

use std::path::{Path, PathBuf};

use sqlx::{AnyConnection, ConnectOptions, Executor};

/// The `sqlite:` URL of a file, created when missing.
pub fn file_url(path: &Path) -> String {
    sqlx::sqlite::SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .to_url_lossy()
        .to_string()
}

/// The file path in a `sqlite:` URL, if it names a file.
pub fn path_of_url(url: &str) -> Option<PathBuf> {
    let rest = url.strip_prefix("sqlite:")?;
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let path = rest.split('?').next()?;
    if path.is_empty() || path == ":memory:" {
        return None;
    }
    let decoded = percent_decode(path);
    Some(PathBuf::from(decoded))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Per-connection settings. WAL lets readers run beside the writer (and is
/// stored in the file, so only the first connection switches it);
/// `synchronous = NORMAL` is WAL's recommended durability (a committed
/// transaction survives a process crash; a power cut may lose the last
/// ones); foreign keys and the 5 s busy timeout are sqlx's defaults.
pub(crate) async fn configure_connection(conn: &mut AnyConnection) -> Result<(), sqlx::Error> {
    conn.execute("PRAGMA journal_mode = WAL").await?;
    conn.execute("PRAGMA synchronous = NORMAL").await?;
    conn.execute("PRAGMA foreign_keys = ON").await?;
    conn.execute("PRAGMA busy_timeout = 5000").await?;
    Ok(())
}

/// Takes the oldest ready job (see [`crate::db::postgres::CLAIM_JOB`]).
pub(crate) const CLAIM_JOB: &str = "UPDATE enrollment_jobs \
     SET state = 'running', attempts = attempts + 1, lease_until = $1, updated_at = $2 \
     WHERE id = (SELECT id FROM enrollment_jobs \
                 WHERE state = 'queued' AND available_at <= $2 ORDER BY id LIMIT 1) \
     RETURNING id, username, image, attempts";

/// Locks nothing: the enclosing write transaction already excludes other
/// writers.
pub(crate) const LOCK_JOB: &str = "SELECT id FROM enrollment_jobs WHERE id = $1";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_urls_round_trip_to_their_path() {
        for p in ["/tmp/a b/veriface.db", "/data/x%y/v.db", "/plain/v.db"] {
            let url = file_url(Path::new(p));
            assert_eq!(path_of_url(&url), Some(PathBuf::from(p)), "{url}");
        }
        assert_eq!(path_of_url("sqlite::memory:"), None);
    }
}
