//! Object keys: `PREFIX/<unit directory relative to the output root>/<file relative to the
//! unit>`, every component checked to be one plain path component, so a key always mirrors the
//! local layout and a key read back can never name a path outside its directory.

use object_store::path::{Path as ObjectPath, PathPart};
use std::path::{Component, Path};

/// Why a name cannot be part of a key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}: {value:?}")]
pub struct KeyError {
    /// Why.
    pub reason: &'static str,
    /// The offending name.
    pub value: String,
}

/// Checks that `name` is one path component: not empty, not `.` or `..`, no `/`, `\` or NUL.
pub fn check_component(name: &str) -> Result<&str, KeyError> {
    let err = |reason| KeyError {
        reason,
        value: name.chars().take(300).collect(),
    };
    match name {
        "" => Err(err("empty component")),
        "." | ".." => Err(err("relative component")),
        n if n.len() > 255 => Err(err("component longer than 255 bytes")),
        n if n.contains(['/', '\\', '\0']) => Err(err("component contains '/', '\\' or NUL")),
        n => Ok(n),
    }
}

/// The components of a relative local path, each checked.
pub fn components(rel: &Path) -> Result<Vec<String>, KeyError> {
    rel.components()
        .map(|c| match c {
            Component::Normal(s) => s
                .to_str()
                .ok_or(KeyError {
                    reason: "name is not UTF-8",
                    value: s.to_string_lossy().into_owned(),
                })
                .and_then(check_component)
                .map(str::to_owned),
            other => Err(KeyError {
                reason: "not a plain relative path",
                value: other.as_os_str().to_string_lossy().into_owned(),
            }),
        })
        .collect()
}

/// The key of `parts`, joined under `prefix`.
pub fn key<'a>(
    prefix: &'a [String],
    parts: impl IntoIterator<Item = &'a str>,
) -> Result<ObjectPath, KeyError> {
    let all: Vec<&str> = prefix
        .iter()
        .map(String::as_str)
        .chain(parts)
        .collect::<Vec<_>>();
    for p in &all {
        check_component(p)?;
    }
    Ok(ObjectPath::from_iter(all.into_iter().map(PathPart::from)))
}

/// `parts` as the key writes them, `/`-separated (a manifest names its files so: what a
/// fetch of the keys finds).
pub fn key_path(parts: &[String]) -> String {
    parts
        .iter()
        .map(|p| PathPart::from(p.as_str()).as_ref().to_owned())
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_mirror_the_local_layout() {
        let prefix = vec!["relay".to_owned(), "a".to_owned()];
        let unit = components(Path::new("host/s-20260101-000000/archives/c1")).unwrap();
        let file = components(Path::new("ust/uid/1000/64-bit/chan_0")).unwrap();
        let k = key(&prefix, unit.iter().chain(file.iter()).map(String::as_str)).unwrap();
        assert_eq!(
            k.as_ref(),
            "relay/a/host/s-20260101-000000/archives/c1/ust/uid/1000/64-bit/chan_0"
        );
        // Chunk names carry '+' (time zones): kept as is.
        let k = key(&prefix, ["20260101T000000+0000-20260101T000010+0000-1"]).unwrap();
        assert!(k.as_ref().ends_with("+0000-1"));
        // Characters S3 keys avoid are escaped, the same way in keys and manifests.
        let odd = vec!["a%b".to_owned(), "c".to_owned()];
        let k = key(&[], odd.iter().map(String::as_str)).unwrap();
        assert_eq!(k.as_ref(), key_path(&odd));
        assert_eq!(key_path(&odd), "a%25b/c");
    }

    #[test]
    fn names_that_would_escape_are_refused() {
        for bad in ["", ".", "..", "a/b", "a\\b", "a\0b"] {
            assert!(check_component(bad).is_err(), "{bad:?}");
            assert!(key(&[], [bad]).is_err(), "{bad:?}");
        }
        assert!(components(Path::new("/abs/x")).is_err());
        assert!(components(Path::new("a/../b")).is_err());
        assert!(components(Path::new("./a")).is_err());
        assert!(check_component(".hidden").is_ok());
    }
}
