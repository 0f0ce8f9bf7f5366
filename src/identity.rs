//! A node's stable identity: UUIDs as people write them, and the identity file that keeps
//! one across restarts ([`crate::Builder::identity_file`]). Touches the file system, never
//! the network.

use std::fs;
use std::io::{ErrorKind, Write};
use std::path::Path;

use uuid::Uuid;

use crate::error::{io_err, Error};

/// A UUID as 32 hex digits, or as 36 with the four hyphens in their usual places; either
/// case. Nothing else (no braces, no `urn:uuid:`), so a typo is not taken for a UUID.
pub fn parse_uuid(s: &str) -> Result<Uuid, String> {
    let hyphens_in_place = s.len() == 36
        && s.char_indices()
            .all(|(i, c)| matches!(i, 8 | 13 | 18 | 23) == (c == '-'));
    let hex = s.len() == 32 || hyphens_in_place;
    let digits = s.chars().filter(|c| *c != '-');
    if !hex || !digits.clone().all(|c| c.is_ascii_hexdigit()) {
        return Err("not a UUID (32 hex digits, or 8-4-4-4-12 with hyphens)".into());
    }
    let digits: String = digits.collect();
    Uuid::try_parse(&digits).map_err(|e| e.to_string())
}

/// The UUID kept in `path`, or a new random one written there when the file does not
/// exist. The file holds the 32 upper-case hex digits and a newline (mode 0644). It
/// appears whole or not at all: written to a temporary file beside it, then linked into
/// place, which fails if another process created it meanwhile; that one's UUID is then
/// read and used, so two nodes started at once on one file agree.
pub(crate) fn load_or_create(path: &Path) -> Result<Uuid, Error> {
    match fs::read(path) {
        Ok(bytes) => return parse_file(path, &bytes),
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(io_err(format!("read identity file {}", path.display()))(e)),
    }
    let uuid = Uuid::new_v4();
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path.file_name().ok_or_else(|| {
        Error::Config(format!("identity file {}: not a file name", path.display()))
    })?;
    // Unique to this attempt: other nodes, in this process too, may be creating it now.
    let tmp = dir.join(format!(".{}.{}.tmp", name.to_string_lossy(), uuid.simple()));
    let ctx = || format!("create identity file {}", path.display());
    let written = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(format!("{}\n", crate::uuid_hex(&uuid)).as_bytes())?;
        set_mode(&tmp)?;
        f.sync_all()
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(io_err(ctx())(e));
    }
    // A link never replaces an existing file; a rename would, and two racing nodes would
    // then each keep a different UUID from the same file.
    let placed = match fs::hard_link(&tmp, path) {
        Err(e) if e.kind() != ErrorKind::AlreadyExists => fs::rename(&tmp, path),
        other => other,
    };
    let _ = fs::remove_file(&tmp);
    match placed {
        Ok(()) => Ok(uuid),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {
            let bytes = fs::read(path).map_err(io_err(ctx()))?;
            parse_file(path, &bytes)
        }
        Err(e) => Err(io_err(ctx())(e)),
    }
}

#[cfg(unix)]
fn set_mode(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(0o644))
}

#[cfg(not(unix))]
fn set_mode(_: &Path) -> std::io::Result<()> {
    Ok(())
}

fn parse_file(path: &Path, bytes: &[u8]) -> Result<Uuid, Error> {
    let bad = |why: String| Error::Config(format!("identity file {}: {why}", path.display()));
    let text = std::str::from_utf8(bytes).map_err(|_| bad("not text".into()))?;
    // Written by hand, it may have gained blank space around the UUID.
    parse_uuid(text.trim()).map_err(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_in_either_case_with_or_without_hyphens() {
        let u = Uuid::from_u128(0x0123_4567_89AB_CDEF_0123_4567_89AB_CDEF);
        for s in [
            "0123456789ABCDEF0123456789ABCDEF",
            "0123456789abcdef0123456789abcdef",
            "01234567-89ab-CDEF-0123-456789abcdef",
        ] {
            assert_eq!(parse_uuid(s), Ok(u), "{s}");
        }
        for s in [
            "",
            "0123456789ABCDEF0123456789ABCDE",
            "0123456789ABCDEF0123456789ABCDEFF",
            "0123456789ABCDEF0123456789ABCDEG",
            "{01234567-89ab-cdef-0123-456789abcdef}",
            "0123456-789ab-cdef-0123-456789abcdef",
            "0123456789ABCDEF0123456789ABCD-E",
            "urn:uuid:01234567-89ab-cdef-0123-456789abcdef",
            "01234567-89ab-cdef-0123-456789abcdé",
        ] {
            assert!(parse_uuid(s).is_err(), "{s}");
        }
    }

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("zre-identity-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn the_file_is_created_once_and_reused() {
        let dir = scratch("reuse");
        let path = dir.join("id");
        let first = load_or_create(&path).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(text, format!("{}\n", crate::uuid_hex(&first)));
        assert_eq!(text.len(), 33);
        assert!(!text.chars().any(|c| c.is_ascii_lowercase()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o644);
        }
        assert_eq!(load_or_create(&path).unwrap(), first);
        // Nothing else is left beside it.
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_malformed_file_is_a_config_error_naming_it() {
        let dir = scratch("bad");
        let path = dir.join("id");
        for content in [
            &b""[..],
            b"hello\n",
            b"0123\n",
            b"\xff\xfe",
            b"0123456789ABCDEF 0123456789ABCDEF\n",
            b"0123456789ABCDEF0123456789ABCDEF\n0123456789ABCDEF0123456789ABCDEF\n",
        ] {
            fs::write(&path, content).unwrap();
            match load_or_create(&path) {
                Err(Error::Config(why)) => assert!(why.contains(&*path.to_string_lossy()), "{why}"),
                other => panic!("{content:?}: {other:?}"),
            }
        }
        // Hand-written forms are fine.
        fs::write(&path, "  01234567-89ab-cdef-0123-456789abcdef\r\n\n").unwrap();
        assert_eq!(
            load_or_create(&path).unwrap(),
            Uuid::from_u128(0x0123_4567_89AB_CDEF_0123_4567_89AB_CDEF)
        );
        // A directory where the file should be, or no such directory: an I/O error naming it.
        let missing = dir.join("no/such/dir/id");
        let e = load_or_create(&missing).unwrap_err().to_string();
        assert!(e.contains("no/such/dir/id"), "{e}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn nodes_creating_one_file_at_once_agree() {
        let dir = scratch("race");
        let path = dir.join("id");
        let got: Vec<Uuid> = std::thread::scope(|s| {
            let all: Vec<_> = (0..8)
                .map(|_| s.spawn(|| load_or_create(&path).unwrap()))
                .collect();
            all.into_iter().map(|t| t.join().unwrap()).collect()
        });
        assert!(got.iter().all(|u| *u == got[0]), "{got:?}");
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            format!("{}\n", crate::uuid_hex(&got[0]))
        );
        assert_eq!(
            fs::read_dir(&dir).unwrap().count(),
            1,
            "no temporary file left"
        );
        fs::remove_dir_all(&dir).unwrap();
    }
}
