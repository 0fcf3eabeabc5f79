//! The agent's project records: SQLite (WAL) through rusqlite. One connection behind a mutex;
//! every call is short. Steps are events; a project's status is the last word on it. A backup
//! copies the file with SQLite's online backup API; a restore inserts records all or none.

use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::{Context as _, Result};
use rusqlite::{Connection, OptionalExtension as _, params};

pub use super::api::{Event, Project, ProjectStatus};

/// A status is stored as its word (`ProjectStatus::as_str`).
impl rusqlite::ToSql for ProjectStatus {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(self.as_str().into())
    }
}

/// A word that names no status is a damaged record, reported as such.
impl rusqlite::types::FromSql for ProjectStatus {
    fn column_result(value: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        let word = value.as_str()?;
        ProjectStatus::parse(word).ok_or_else(|| {
            rusqlite::types::FromSqlError::Other(format!("unknown project status `{word}`").into())
        })
    }
}

#[derive(Clone)]
pub struct Db {
    conn: Arc<Mutex<Connection>>,
    /// Counts every event written and every status set: a long poll waits on it
    /// ([`Db::changes`]) instead of reading the database again and again.
    changed: Arc<tokio::sync::watch::Sender<u64>>,
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
            changed: Arc::new(tokio::sync::watch::Sender::new(0)),
        })
    }

    /// A receiver that sees a change each time an event is written or a status set (the value
    /// is a count, of no meaning). Mark it seen (`borrow_and_update`) before reading what a wait
    /// should be woken for, so a change between the read and the wait is not missed.
    pub fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changed.subscribe()
    }

    fn changed(&self) {
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    fn with<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T> {
        let conn = self
            .conn
            .lock()
            .map_err(|_| anyhow::anyhow!("the project database lock is poisoned"))?;
        Ok(f(&conn)?)
    }

    /// Inserts a queued project; `Ok(false)` when the name is taken. The name of a deleted
    /// project is free: its record and events make way for the new one, in one transaction.
    pub fn insert(&self, id: &str, name: &str, prompt: &str) -> Result<bool> {
        let t = now();
        self.with(|c| {
            let tx = c.unchecked_transaction()?;
            tx.execute(
                "DELETE FROM events WHERE project_id IN \
                    (SELECT id FROM projects WHERE name = ?1 AND status = 'deleted')",
                params![name],
            )?;
            tx.execute(
                "DELETE FROM projects WHERE name = ?1 AND status = 'deleted'",
                params![name],
            )?;
            let inserted = match tx.execute(
                "INSERT INTO projects (id, name, prompt, status, created_at, updated_at) VALUES \
                    (?1, ?2, ?3, 'queued', ?4, ?4)",
                params![id, name, prompt, t],
            ) {
                Ok(_) => true,
                Err(rusqlite::Error::SqliteFailure(e, _))
                    if e.code == rusqlite::ErrorCode::ConstraintViolation =>
                {
                    false
                }
                Err(e) => return Err(e),
            };
            tx.commit()?;
            Ok(inserted)
        })
    }

    /// Marks a project deleted: nothing of it is left to link to, so its URLs and its list of
    /// created parts go with it.
    pub fn set_deleted(&self, id: &str) -> Result<()> {
        self.with(|c| {
            c.execute(
                "UPDATE projects SET status = 'deleted', repo_url = NULL, live_url = NULL, \
                    created = '', updated_at = ?2 WHERE id = ?1",
                params![id, now()],
            )
            .map(|_| ())
        })?;
        self.changed();
        Ok(())
    }

    pub fn set_status(&self, id: &str, status: ProjectStatus, error: Option<&str>) -> Result<()> {
        self.with(|c| {
            c.execute(
                "UPDATE projects SET status = ?2, error = ?3, updated_at = ?4 WHERE id = ?1",
                params![id, status, error, now()],
            )
            .map(|_| ())
        })?;
        self.changed();
        Ok(())
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
        let seq = self.with(|c| {
            c.execute(
                "INSERT INTO events (project_id, at, step, status, message, data) VALUES \
                (?1, ?2, ?3, ?4, ?5, ?6)",
                params![id, now(), step, status, message, data],
            )?;
            Ok(c.last_insert_rowid())
        })?;
        self.changed();
        Ok(seq)
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
                "SELECT {} FROM projects WHERE status != ?1 ORDER BY created_at, id",
                Self::COLUMNS
            ))?;
            stmt.query_map(params![ProjectStatus::Deleted], Self::row)?
                .collect()
        })
    }

    /// Projects a restart found mid-way.
    pub fn unfinished(&self) -> Result<Vec<Project>> {
        Ok(self
            .list()?
            .into_iter()
            .filter(|p| p.status.is_active())
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

impl Db {
    /// A consistent copy of the database at `path` (a new file), through SQLite's online backup
    /// API while the agent keeps running; the copy is a single file (rollback journal).
    pub fn backup_to(&self, path: &Path) -> Result<()> {
        let mut copy = Connection::open(path)
            .with_context(|| format!("cannot create `{}`", path.display()))?;
        self.with(|c| {
            rusqlite::backup::Backup::new(c, &mut copy)?.run_to_completion(
                1000,
                std::time::Duration::ZERO,
                None,
            )
        })?;
        copy.pragma_update(None, "journal_mode", "DELETE")?;
        Ok(())
    }

    /// Inserts restored projects with their events, as `restoring` with nothing created yet, in
    /// one transaction: all or none. A `deleted` record of the same name or id is replaced (its
    /// events go with it). `Ok(Err(taken))` lists the projects whose name or id a record that is
    /// not deleted holds, by name; then nothing was inserted.
    pub fn insert_restored(
        &self,
        projects: &[(Project, Vec<Event>)],
    ) -> Result<Result<(), Vec<String>>> {
        let t = now();
        self.with(|c| {
            let tx = c.unchecked_transaction()?;
            let mut taken = Vec::new();
            for (p, _) in projects {
                let live: bool = tx
                    .prepare_cached(
                        "SELECT 1 FROM projects WHERE (id = ?1 OR name = ?2) AND status != ?3",
                    )?
                    .exists(params![p.id, p.name, ProjectStatus::Deleted])?;
                if live {
                    taken.push(p.name.clone());
                }
            }
            if !taken.is_empty() {
                return Ok(Err(taken));
            }
            for (p, events) in projects {
                tx.execute(
                    "DELETE FROM events WHERE project_id IN (SELECT id FROM projects WHERE id = ?1 \
                        OR name = ?2)",
                    params![p.id, p.name],
                )?;
                tx.execute(
                    "DELETE FROM projects WHERE id = ?1 OR name = ?2",
                    params![p.id, p.name],
                )?;
                tx.execute(
                    "INSERT INTO projects (id, name, prompt, status, error, undone, created, \
                        attempts, created_at, updated_at) VALUES (?1, ?2, ?3, ?9, ?4, ?5, '', ?6, \
                        ?7, ?8)",
                    params![
                        p.id,
                        p.name,
                        p.prompt,
                        p.error,
                        p.undone.join(","),
                        p.attempts,
                        p.created_at,
                        t,
                        ProjectStatus::Restoring
                    ],
                )?;
                for e in events {
                    tx.execute(
                        "INSERT INTO events (project_id, at, step, status, message, data) VALUES \
                            (?1, ?2, ?3, ?4, ?5, ?6)",
                        params![
                            p.id,
                            e.at,
                            e.step,
                            e.status,
                            e.message,
                            e.data.as_ref().map(serde_json::Value::to_string)
                        ],
                    )?;
                }
            }
            tx.commit()?;
            Ok(Ok(()))
        })
    }

    /// A restored project's last word: its status, what exists and its URLs on this stack.
    pub fn finish_restore(
        &self,
        id: &str,
        status: ProjectStatus,
        created: &[String],
        repo: Option<&str>,
        live: Option<&str>,
    ) -> Result<()> {
        self.with(|c| {
            c.execute(
                "UPDATE projects SET status = ?2, created = ?3, repo_url = ?4, live_url = ?5, \
                    updated_at = ?6 WHERE id = ?1",
                params![id, status, created.join(","), repo, live, now()],
            )
            .map(|_| ())
        })
    }

    /// Forgets a project and its events (a restore that is taken back).
    pub fn remove(&self, id: &str) -> Result<()> {
        self.with(|c| {
            c.execute("DELETE FROM events WHERE project_id = ?1", params![id])?;
            c.execute("DELETE FROM projects WHERE id = ?1", params![id])
                .map(|_| ())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{Db, ProjectStatus};

    #[test]
    fn a_deleted_projects_name_is_free_again_and_its_urls_are_gone() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("projects.db")).unwrap();
        assert!(db.insert("id-1", "blog", "a blog").unwrap());
        db.set_urls(
            "id-1",
            Some("http://git/blog.git"),
            Some("http://web/blog/"),
        )
        .unwrap();
        db.event("id-1", "live", "done", "").unwrap();
        assert!(
            !db.insert("id-2", "blog", "another").unwrap(),
            "taken while live"
        );
        db.set_deleted("id-1").unwrap();
        let gone = db.find("id-1").unwrap().unwrap();
        assert_eq!(gone.status, ProjectStatus::Deleted);
        assert_eq!((gone.repo_url, gone.live_url), (None, None));
        assert!(
            db.insert("id-2", "blog", "another").unwrap(),
            "free once deleted"
        );
        assert!(db.find("id-1").unwrap().is_none());
        assert!(db.events("id-1", 0).unwrap().is_empty());
        assert_eq!(db.find("blog").unwrap().unwrap().id, "id-2");
    }

    #[test]
    fn a_backup_copy_holds_the_records_and_a_restore_is_all_or_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("projects.db")).unwrap();
        assert!(db.insert("id-1", "blog", "a blog").unwrap());
        db.event_with(
            "id-1",
            "llm",
            "done",
            "ok",
            Some(&serde_json::json!({"tokens_out": 9})),
        )
        .unwrap();
        db.set_status("id-1", ProjectStatus::Live, None).unwrap();
        db.backup_to(&dir.path().join("copy.db")).unwrap();
        // The copy is one file, and holds what the database held.
        assert!(!dir.path().join("copy.db-wal").exists());
        let copy = Db::open(&dir.path().join("copy.db")).unwrap();
        let project = copy.find("blog").unwrap().unwrap();
        assert_eq!(project.status, ProjectStatus::Live);
        let events = copy.events("id-1", 0).unwrap();
        assert_eq!(events[0].data, Some(serde_json::json!({"tokens_out": 9})));

        let target = Db::open(&dir.path().join("target.db")).unwrap();
        assert!(target.insert("id-2", "shop", "a shop").unwrap());
        let shop = target.find("shop").unwrap().unwrap();
        let both = vec![(project.clone(), events.clone()), (shop, Vec::new())];
        let taken = target.insert_restored(&both).unwrap().unwrap_err();
        assert_eq!(taken, ["shop"]);
        assert!(
            target.find("blog").unwrap().is_none(),
            "nothing half-restored"
        );

        // A deleted record of the same name gives way.
        target
            .set_status("id-2", ProjectStatus::Deleted, None)
            .unwrap();
        let mut renamed = project.clone();
        renamed.name = "shop".into();
        target
            .insert_restored(&[(renamed, events.clone())])
            .unwrap()
            .unwrap();
        let restored = target.find("shop").unwrap().unwrap();
        assert_eq!(
            (restored.id.as_str(), restored.status.as_str()),
            ("id-1", "restoring")
        );
        assert_eq!(target.events("id-1", 0).unwrap().len(), 1);
        target
            .finish_restore(
                "id-1",
                ProjectStatus::Live,
                &["repo".into()],
                Some("r"),
                Some("l"),
            )
            .unwrap();
        let done = target.find("id-1").unwrap().unwrap();
        assert_eq!(
            (done.status.as_str(), done.created.clone()),
            ("live", vec!["repo".to_string()])
        );
        target.remove("id-1").unwrap();
        assert!(target.find("id-1").unwrap().is_none());
        assert!(target.events("id-1", 0).unwrap().is_empty());
    }
}
