//! lttng's run directory, where lttng-relayd 2.14+ writes its bound ports and keeps its health
//! socket: `$LTTNG_RUNDIR` when set, else `/var/run/lttng` for root, else `$LTTNG_HOME/.lttng`
//! (`$HOME/.lttng`). The relay's files are in its `relayd/` subdirectory:
//! `control.port`, `data.port`, `live.port` (the decimal port and a newline, each replaced
//! atomically) and `health-PID` (the health socket, unless `LTTNG_RELAYD_HEALTH` names another).
//!
//! As root, both directories are given to the tracing group (`-g`, default `tracing`, root's
//! group when it does not exist) with mode 0755, as lttng-relayd does.

use std::path::{Path, PathBuf};

/// lttng's system run directory (root).
pub const SYSTEM_RUNDIR: &str = "/var/run/lttng";

/// The tracing group when `-g` is absent.
pub const DEFAULT_GROUP: &str = "tracing";

/// Why the run directory could not be used.
#[derive(Debug, thiserror::Error)]
pub enum RundirError {
    /// Neither `LTTNG_RUNDIR`, `LTTNG_HOME` nor `HOME` says where it is.
    #[error("no run directory: set LTTNG_RUNDIR, LTTNG_HOME or HOME")]
    NoHome,
    /// A directory or file could not be created.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> RundirError + '_ {
    move |source| RundirError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The run directory for a process of user `uid`, from the environment values given.
pub fn rundir_from(
    uid: u32,
    lttng_rundir: Option<&std::ffi::OsStr>,
    lttng_home: Option<&std::ffi::OsStr>,
    home: Option<&std::ffi::OsStr>,
) -> Result<PathBuf, RundirError> {
    if let Some(r) = lttng_rundir {
        return Ok(PathBuf::from(r));
    }
    if uid == 0 {
        return Ok(PathBuf::from(SYSTEM_RUNDIR));
    }
    let base = lttng_home
        .filter(|v| !v.is_empty())
        .or(home.filter(|v| !v.is_empty()))
        .ok_or(RundirError::NoHome)?;
    Ok(Path::new(base).join(".lttng"))
}

/// The relay's run directory (`RUNDIR/relayd`) of this process, created (with its parent) when
/// missing.
#[derive(Debug, Clone)]
pub struct RelaydRundir {
    dir: PathBuf,
    /// Group given the directories and the health socket when running as root.
    pub gid: Option<u32>,
}

impl RelaydRundir {
    /// Resolves and creates `RUNDIR/relayd` for this process; `group` is `-g`.
    pub fn open(group: Option<&str>) -> Result<RelaydRundir, RundirError> {
        let env = |k| std::env::var_os(k);
        let uid = nix::unistd::getuid();
        let root = rundir_from(
            uid.as_raw(),
            env("LTTNG_RUNDIR").as_deref(),
            env("LTTNG_HOME").as_deref(),
            env("HOME").as_deref(),
        )?;
        let gid = uid.is_root().then(|| {
            nix::unistd::Group::from_name(group.unwrap_or(DEFAULT_GROUP))
                .ok()
                .flatten()
                .map_or(0, |g| g.gid.as_raw())
        });
        let me = RelaydRundir {
            dir: root.join("relayd"),
            gid,
        };
        me.create(&root)?;
        me.create(&me.dir)?;
        Ok(me)
    }

    fn create(&self, dir: &Path) -> Result<(), RundirError> {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        match std::fs::DirBuilder::new().mode(0o700).create(dir) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(io(dir)(e)),
            _ => {}
        }
        if let Some(gid) = self.gid {
            std::os::unix::fs::chown(dir, Some(0), Some(gid)).map_err(io(dir))?;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
                .map_err(io(dir))?;
        }
        Ok(())
    }

    /// `RUNDIR/relayd`.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The default health socket path, `RUNDIR/relayd/health-PID`.
    pub fn health_socket(&self) -> PathBuf {
        self.dir.join(format!("health-{}", std::process::id()))
    }

    /// Writes `control.port`, `data.port` and `live.port`.
    pub fn write_ports(&self, control: u16, data: u16, live: u16) -> Result<(), RundirError> {
        for (name, port) in [
            ("control.port", control),
            ("data.port", data),
            ("live.port", live),
        ] {
            let path = self.dir.join(name);
            let tmp = self.dir.join(format!("{name}.tmp"));
            std::fs::write(&tmp, format!("{port}\n")).map_err(io(&tmp))?;
            std::fs::rename(&tmp, &path).map_err(io(&path))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn rundir_follows_lttng() {
        let r = |uid, a: Option<&str>, b: Option<&str>, c: Option<&str>| {
            rundir_from(uid, a.map(OsStr::new), b.map(OsStr::new), c.map(OsStr::new))
        };
        assert_eq!(r(0, Some("/r"), None, None).unwrap(), PathBuf::from("/r"));
        assert_eq!(
            r(0, None, Some("/h"), None).unwrap(),
            PathBuf::from(SYSTEM_RUNDIR)
        );
        assert_eq!(
            r(1000, None, Some("/h"), Some("/u")).unwrap(),
            PathBuf::from("/h/.lttng")
        );
        assert_eq!(
            r(1000, None, Some(""), Some("/u")).unwrap(),
            PathBuf::from("/u/.lttng")
        );
        assert!(r(1000, None, None, None).is_err());
    }
}
