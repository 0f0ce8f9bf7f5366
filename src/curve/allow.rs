//! The allow-list: the public keys a node accepts, from a directory of public
//! certificates (as CZMQ's zcertstore and zauth read one) or a file of Z85 keys.
//!
//! [`AllowList::parse_keys`] and [`AllowList::contains`] are pure; [`AllowList::load`]
//! reads the files. A directory is read as zcertstore reads it: every regular file
//! that is a certificate adds its public key (a secret certificate adds its public key
//! too); other files are skipped and reported in [`AllowList::skipped`], never fatal,
//! so a README or an editor's backup file beside the certificates does no harm.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::cert::{Cert, CertError};
use super::{z85, PublicKey};

/// A set of accepted public keys.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    keys: BTreeSet<[u8; 32]>,
    /// Files of a directory that were not certificates, and why.
    skipped: Vec<String>,
}

impl AllowList {
    /// A list of these keys.
    pub fn from_keys(keys: impl IntoIterator<Item = PublicKey>) -> Self {
        AllowList {
            keys: keys.into_iter().map(|k| k.0).collect(),
            skipped: Vec::new(),
        }
    }

    /// True if `key` is on the list.
    pub fn contains(&self, key: &[u8; 32]) -> bool {
        self.keys.contains(key)
    }

    /// How many keys are on the list.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True if no key is on it (a node with such a list accepts no one).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The keys, in byte order.
    pub fn keys(&self) -> impl Iterator<Item = PublicKey> + '_ {
        self.keys.iter().map(|k| PublicKey(*k))
    }

    /// Files of a directory that were skipped, each with the reason.
    pub fn skipped(&self) -> &[String] {
        &self.skipped
    }

    /// A file of keys: one 40-character Z85 key per line; blank lines and lines starting
    /// with `#` are ignored, as is anything after the key and a blank (a comment naming
    /// the peer). Any other line is an error naming its number.
    pub fn parse_keys(text: &str) -> Result<AllowList, String> {
        let mut keys = BTreeSet::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let word = line.split_whitespace().next().unwrap_or(line);
            let key = z85::decode_key(word).map_err(|e| format!("line {}: {e}", i + 1))?;
            keys.insert(key);
        }
        Ok(AllowList {
            keys,
            skipped: Vec::new(),
        })
    }

    /// Reads a directory of public certificates, or a file of Z85 keys (one a line).
    pub fn load(path: impl AsRef<Path>) -> Result<AllowList, CertError> {
        let path = path.as_ref();
        let io = |source| CertError::Io {
            path: path.to_path_buf(),
            source,
        };
        if std::fs::metadata(path).map_err(io)?.is_dir() {
            let mut list = AllowList::default();
            let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(io)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .collect();
            entries.sort();
            for file in entries {
                if !std::fs::metadata(&file).is_ok_and(|m| m.is_file()) {
                    continue;
                }
                match Cert::load(&file) {
                    Ok(cert) => {
                        list.keys.insert(cert.public.0);
                    }
                    Err(e) => list.skipped.push(e.to_string()),
                }
            }
            return Ok(list);
        }
        let bytes = std::fs::read(path).map_err(io)?;
        let invalid = |what: String| CertError::Invalid {
            path: path.to_path_buf(),
            what,
        };
        let text = String::from_utf8(bytes).map_err(|_| invalid("not UTF-8 text".into()))?;
        AllowList::parse_keys(&text).map_err(|e| invalid(format!("not a file of Z85 keys: {e}")))
    }
}

/// What tells that an allow-list on disk changed: the modification time and size of the
/// path and, for a directory, of each entry (an edited certificate keeps the
/// directory's own time). Compared, never interpreted.
pub fn stamp(path: &Path) -> Vec<(PathBuf, Option<SystemTime>, u64)> {
    let one = |p: &Path| {
        let m = std::fs::metadata(p).ok();
        (
            p.to_path_buf(),
            m.as_ref().and_then(|m| m.modified().ok()),
            m.as_ref().map_or(0, |m| m.len()),
        )
    };
    let mut out = vec![one(path)];
    if let Ok(entries) = std::fs::read_dir(path) {
        let mut files: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        files.sort();
        out.extend(files.iter().map(|f| one(f)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7";
    const B: &str = "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID";

    #[test]
    fn keys_file() {
        let list = AllowList::parse_keys(&format!("# peers\n\n{A}  server\n  {B}\n")).unwrap();
        assert_eq!(list.len(), 2);
        assert!(list.contains(&z85::decode_key(A).unwrap()));
        assert!(list.contains(&z85::decode_key(B).unwrap()));
        assert!(!list.contains(&[0; 32]));
        let e = AllowList::parse_keys(&format!("{A}\nnot-a-key\n")).unwrap_err();
        assert!(e.starts_with("line 2:"), "{e}");
        assert!(AllowList::parse_keys("").unwrap().is_empty());
    }

    #[test]
    fn directory_of_certificates() {
        let dir = std::env::temp_dir().join(format!("zre-allow-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        let golden = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/zcert/");
        std::fs::copy(format!("{golden}server.cert"), dir.join("server.cert")).unwrap();
        std::fs::copy(format!("{golden}client.cert_secret"), dir.join("c_secret")).unwrap();
        std::fs::write(dir.join("README"), "not a cert\n").unwrap();
        let before = stamp(&dir);
        let list = AllowList::load(&dir).unwrap();
        assert_eq!(list.len(), 2);
        assert!(list.contains(&z85::decode_key(A).unwrap()));
        assert!(list.contains(&z85::decode_key(B).unwrap()));
        assert_eq!(list.skipped().len(), 1, "{:?}", list.skipped());
        std::fs::write(dir.join("keys"), format!("{A}\n")).unwrap();
        assert_ne!(stamp(&dir), before);
        let file = AllowList::load(dir.join("keys")).unwrap();
        assert_eq!(file.len(), 1);
        std::fs::write(dir.join("bad"), "zzz\n").unwrap();
        assert!(AllowList::load(dir.join("bad")).is_err());
        assert!(AllowList::load(dir.join("missing")).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(text in "[ a-zA-Z0-9#.\\n]{0,120}") {
            let _ = AllowList::parse_keys(&text);
        }
    }
}
