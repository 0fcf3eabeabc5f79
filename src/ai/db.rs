//! The agent's project records: SQLite (WAL) through rusqlite. One connection behind a mutex;
//! every call is short. Steps are events; a project's status is the last word on it.

use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::{Context as _, Result};
use rusqlite::{Connection, OptionalExtension as _, params};

/// Where a project is in the pipeline. Terminal: `live`, `failed`, `deleted`.
pub const ACTIVE: &[&str] = &[
    "queued",
    "generating",
    "checking",
    "committing",
    "publishing",
    "verifying",
];

pub use super::api::{Event, Project};

#[derive(Clone)]
pub struct Db {
    conn: Arc<Mutex<Connection>>,
}

fn now() -> u64 {
    crate::clock::now_unix()
}

fn split(text: Option<String>) -> Vec<String> {
    text.map(|t| {
        t.split(',')
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect()
    })
    .unwrap_or_default()
}

impl Db {
    pub fn open(path: &Path) -> Result<Db> {
        let conn = Connection::open(path)
            .with_context(|| format!("cannot open the project database `{}`", path.display()))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS projects (
                 id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, prompt TEXT NOT NULL, status TEXT NOT NULL,
                 error TEXT, repo_url TEXT, live_url TEXT, undone TEXT, created TEXT, attempts INTEGER NOT NULL DEFAULT 0,
                 created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS events (
                 seq INTEGER PRIMARY KEY AUTOINCREMENT, project_id TEXT NOT NULL, at INTEGER NOT NULL,
                 step TEXT NOT NULL, status TEXT NOT NULL, message TEXT NOT NULL);
             CREATE INDEX IF NOT EXISTS events_by_project ON events(project_id, seq);
             CREATE INDEX IF NOT EXISTS projects_by_created ON projects(created_at);",
        )?;
        // Databases made before events had data.
        let has_data: bool = conn
            .prepare("SELECT 1 FROM pragma_table_info('events') WHERE name = 'data'")?
            .exists([])?;
        if !has_data {
            conn.execute_batch("ALTER TABLE events ADD COLUMN data TEXT;")?;
        }
        Ok(Db {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    fn with<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T> {
        let conn = self
            .conn
            .lock()
            .map_err(|_| anyhow::anyhow!("the project database lock is poisoned"))?;
        Ok(f(&conn)?)
    }

    /// Inserts a queued project; `Ok(false)` when the name is taken.
    pub fn insert(&self, id: &str, name: &str, prompt: &str) -> Result<bool> {
        let t = now();
        self.with(|c| {
            match c.execute(
                "INSERT INTO projects (id, name, prompt, status, created_at, updated_at) VALUES \
                    (?1, ?2, ?3, 'queued', ?4, ?4)",
                params![id, name, prompt, t],
            ) {
                Ok(_) => Ok(true),
                Err(rusqlite::Error::SqliteFailure(e, _))
                    if e.code == rusqlite::ErrorCode::ConstraintViolation =>
                {
                    Ok(false)
                }
                Err(e) => Err(e),
            }
        })
    }

    pub fn set_status(&self, id: &str, status: &str, error: Option<&str>) -> Result<()> {
        self.with(|c| {
            c.execute(
                "UPDATE projects SET status = ?2, error = ?3, updated_at = ?4 WHERE id = ?1",
                params![id, status, error, now()],
            )
            .map(|_| ())
        })
    }

    pub fn set_urls(&self, id: &str, repo: Option<&str>, live: Option<&str>) -> Result<()> {
        self.with(|c| {
            c.execute(
                "UPDATE projects SET repo_url = COALESCE(?2, repo_url), live_url = COALESCE(?3, \
                    live_url), updated_at = ?4 WHERE id = ?1",
                params![id, repo, live, now()],
            )
            .map(|_| ())
        })
    }

    pub fn set_attempts(&self, id: &str, attempts: u32) -> Result<()> {
        self.with(|c| {
            c.execute(
                "UPDATE projects SET attempts = ?2 WHERE id = ?1",
                params![id, attempts],
            )
            .map(|_| ())
        })
    }

    /// Records what now exists (`repo`, `site`, `route`), so a restart knows what to undo.
    pub fn set_created(&self, id: &str, created: &[String]) -> Result<()> {
        self.with(|c| {
            c.execute(
                "UPDATE projects SET created = ?2, updated_at = ?3 WHERE id = ?1",
                params![id, created.join(","), now()],
            )
            .map(|_| ())
        })
    }

    pub fn set_undone(&self, id: &str, undone: &[String]) -> Result<()> {
        self.with(|c| {
            c.execute(
                "UPDATE projects SET undone = ?2, updated_at = ?3 WHERE id = ?1",
                params![id, undone.join(","), now()],
            )
            .map(|_| ())
        })
    }

    pub fn event(&self, id: &str, step: &str, status: &str, message: &str) -> Result<i64> {
        self.event_with(id, step, status, message, None)
    }

    /// An event with data for programs (see [`Event::data`]).
    pub fn event_with(
        &self,
        id: &str,
        step: &str,
        status: &str,
        message: &str,
        data: Option<&serde_json::Value>,
    ) -> Result<i64> {
        let data = data.map(serde_json::Value::to_string);
        self.with(|c| {
            c.execute(
                "INSERT INTO events (project_id, at, step, status, message, data) VALUES \
                (?1, ?2, ?3, ?4, ?5, ?6)",
                params![id, now(), step, status, message, data],
            )?;
            Ok(c.last_insert_rowid())
        })
    }

    fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Project> {
        Ok(Project {
            id: r.get(0)?,
            name: r.get(1)?,
            prompt: r.get(2)?,
            status: r.get(3)?,
            error: r.get(4)?,
            repo_url: r.get(5)?,
            live_url: r.get(6)?,
            undone: split(r.get(7)?),
            created: split(r.get(8)?),
            attempts: r.get(9)?,
            created_at: r.get(10)?,
            updated_at: r.get(11)?,
        })
    }

    const COLUMNS: &'static str = "id, name, prompt, status, error, repo_url, live_url, undone, \
        created, attempts, created_at, updated_at";

    /// By id, id prefix (8+ characters are unique enough) or name.
    pub fn find(&self, key: &str) -> Result<Option<Project>> {
        self.with(|c| {
            c.query_row(
                &format!(
                    "SELECT {} FROM projects WHERE id = ?1 OR name = ?1 LIMIT 1",
                    Self::COLUMNS
                ),
                params![key],
                Self::row,
            )
            .optional()
        })
    }

    pub fn list(&self) -> Result<Vec<Project>> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {} FROM projects WHERE status != 'deleted' ORDER BY created_at, id",
                Self::COLUMNS
            ))?;
            stmt.query_map([], Self::row)?.collect()
        })
    }

    /// Projects a restart found mid-way.
    pub fn unfinished(&self) -> Result<Vec<Project>> {
        Ok(self
            .list()?
            .into_iter()
            .filter(|p| ACTIVE.contains(&p.status.as_str()))
            .collect())
    }

    pub fn events(&self, id: &str, after: i64) -> Result<Vec<Event>> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT seq, at, step, status, message, data FROM \
                events WHERE project_id = ?1 AND seq > ?2 ORDER BY seq",
            )?;
            stmt.query_map(params![id, after], |r| {
                let data: Option<String> = r.get(5)?;
                Ok(Event {
                    seq: r.get(0)?,
                    at: r.get(1)?,
                    step: r.get(2)?,
                    status: r.get(3)?,
                    message: r.get(4)?,
                    data: data.and_then(|d| serde_json::from_str(&d).ok()),
                })
            })?
            .collect()
        })
    }
}
