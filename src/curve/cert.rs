//! CZMQ's certificate files (zcert), so keys are shared with Zyre C, zauth and zcertstore:
//! ZPL text with `curve/public-key` (and, in the secret file, `curve/secret-key`) as 40
//! Z85 characters, plus free `metadata`. `zcert_save(cert, "FILE")` writes the public
//! certificate to FILE and the secret one to `FILE_secret`.
//!
//! Parsing and writing are pure; [`Cert::load`] and [`Cert::save`] add the file I/O.
//! Nothing here panics on a malformed file: every problem is a [`CertError`] naming the
//! file and, for syntax, the line.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::{z85, zpl, PublicKey};

/// A secret CURVE key. Its `Debug` shows nothing of it.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretKey(pub(crate) [u8; 32]);

impl SecretKey {
    /// The 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(..)")
    }
}

/// A certificate: a public key, the secret key when this is a secret certificate, and
/// its metadata (name and value pairs, in file order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cert {
    /// The public key.
    pub public: PublicKey,
    /// The secret key (secret certificates only).
    pub secret: Option<SecretKey>,
    /// The `metadata` section.
    pub metadata: Vec<(String, String)>,
}

/// Why a certificate could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// The file could not be read or written.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a certificate.
    #[error("{}: not a ZeroMQ certificate: {what}", .path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        what: String,
    },
    /// A secret key was needed and this certificate has none.
    #[error("{}: no secret key here (a public certificate?); zcert keeps the secret one in FILE_secret", .0.display())]
    NoSecret(PathBuf),
    /// [`Cert::save`] would overwrite this file.
    #[error("{}: exists already; not overwritten", .0.display())]
    Exists(PathBuf),
}

impl Cert {
    /// Reads certificate text (either kind). `path` only names the file in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Cert, CertError> {
        let invalid = |what: String| CertError::Invalid {
            path: path.to_path_buf(),
            what,
        };
        let props = zpl::parse(text).map_err(|e| invalid(e.to_string()))?;
        let mut public = None;
        let mut secret = None;
        let mut metadata = Vec::new();
        for (names, value) in props {
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            match names.as_slice() {
                ["curve", "public-key"] => public = Some(value),
                ["curve", "secret-key"] => secret = Some(value),
                ["metadata", name] => metadata.push((name.to_string(), value)),
                _ => {}
            }
        }
        let key = |field: &str, text: String| {
            z85::decode_key(&text).map_err(|e| invalid(format!("curve/{field}: {e}")))
        };
        let public = public.ok_or_else(|| invalid("no curve/public-key".into()))?;
        let public = PublicKey(key("public-key", public)?);
        let secret = secret
            .map(|s| key("secret-key", s).map(SecretKey))
            .transpose()?;
        Ok(Cert {
            public,
            secret,
            metadata,
        })
    }

    /// Reads a certificate file (either kind).
    pub fn load(path: impl AsRef<Path>) -> Result<Cert, CertError> {
        let path = path.as_ref();
        let io = |source| CertError::Io {
            path: path.to_path_buf(),
            source,
        };
        let bytes = std::fs::read(path).map_err(io)?;
        let text = String::from_utf8(bytes).map_err(|_| CertError::Invalid {
            path: path.to_path_buf(),
            what: "not UTF-8 text".into(),
        })?;
        Cert::parse(&text, path)
    }

    /// Reads a secret certificate given as zcert names it: `FILE_secret` itself, or
    /// `FILE` when `FILE_secret` exists beside it (as `zcert_load` does), or `FILE` when
    /// it holds the secret key.
    pub fn load_secret(path: impl AsRef<Path>) -> Result<Cert, CertError> {
        let path = path.as_ref();
        let beside = secret_path(path);
        let cert = if beside.exists() {
            Cert::load(&beside)?
        } else {
            Cert::load(path)?
        };
        if cert.secret.is_none() {
            return Err(CertError::NoSecret(path.to_path_buf()));
        }
        Ok(cert)
    }

    /// The public certificate's text, laid out as CZMQ's `zcert_save_public` lays it
    /// out (its first comment line names the writer and the time).
    pub fn public_text(&self, generated: &str) -> String {
        let mut s = format!(
            "#   ****  Generated on {generated} by zre  ****\n\
             #   ZeroMQ CURVE Public Certificate\n\
             #   Exchange securely, or use a secure mechanism to verify the contents\n\
             #   of this file after exchange. Store public certificates in your home\n\
             #   directory, in the .curve subdirectory.\n\n"
        );
        self.body(&mut s, false);
        s
    }

    /// The secret certificate's text (CZMQ's `zcert_save_secret` layout); None without
    /// a secret key.
    pub fn secret_text(&self, generated: &str) -> Option<String> {
        self.secret.as_ref()?;
        let mut s = format!(
            "#   ****  Generated on {generated} by zre  ****\n\
             #   ZeroMQ CURVE **Secret** Certificate\n\
             #   DO NOT PROVIDE THIS FILE TO OTHER USERS nor change its permissions.\n\n"
        );
        self.body(&mut s, true);
        Some(s)
    }

    fn body(&self, s: &mut String, secret: bool) {
        s.push_str("metadata\n");
        for (name, value) in &self.metadata {
            // Names and values are written as given; `save` refuses what ZPL cannot hold.
            s.push_str(&format!("    {name} = \"{value}\"\n"));
        }
        s.push_str("curve\n");
        s.push_str(&format!("    public-key = \"{}\"\n", self.public));
        if let (true, Some(k)) = (secret, &self.secret) {
            s.push_str(&format!("    secret-key = \"{}\"\n", z85::encode_key(&k.0)));
        }
    }

    /// Writes the pair as `zcert_save` does: the public certificate to `path` (mode
    /// 0644), the secret one to `path_secret` (mode 0600, created so: never readable by
    /// others, not even for a moment). Overwrites neither: if either exists, nothing is
    /// written ([`CertError::Exists`]). `generated` goes into the first comment line.
    pub fn save(&self, path: impl AsRef<Path>, generated: &str) -> Result<(), CertError> {
        let path = path.as_ref();
        let secret_file = secret_path(path);
        for (name, value) in &self.metadata {
            let ok = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "$-_@.&+/".contains(c))
                && !value.contains(['"', '\n', '\r']);
            if !ok {
                return Err(CertError::Invalid {
                    path: path.to_path_buf(),
                    what: format!("metadata {name:?} = {value:?} cannot be written as ZPL"),
                });
            }
        }
        let secret = self
            .secret_text(generated)
            .ok_or_else(|| CertError::NoSecret(path.to_path_buf()))?;
        for p in [path, secret_file.as_path()] {
            if p.symlink_metadata().is_ok() {
                return Err(CertError::Exists(p.to_path_buf()));
            }
        }
        // The secret first: a public certificate without its secret would be useless.
        write_new(&secret_file, &secret, 0o600)?;
        if let Err(e) = write_new(path, &self.public_text(generated), 0o644) {
            let _ = std::fs::remove_file(&secret_file);
            return Err(e);
        }
        Ok(())
    }
}

/// `FILE_secret` beside `FILE`.
pub fn secret_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push("_secret");
    PathBuf::from(name)
}

/// Creates `path` (never replacing a file: `O_EXCL`) with this mode and text.
fn write_new(path: &Path, text: &str, mode: u32) -> Result<(), CertError> {
    use std::os::unix::fs::OpenOptionsExt;
    let io = |source| CertError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                CertError::Exists(path.to_path_buf())
            } else {
                io(e)
            }
        })?;
    // The umask may have taken bits from 0644; 0600 it can only keep or narrow.
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/zcert/");
    const SERVER_PUBLIC: &str = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7";
    const SERVER_SECRET: &str = "JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6";

    fn golden(name: &str) -> String {
        std::fs::read_to_string(format!("{GOLDEN}{name}")).unwrap()
    }

    /// Files CZMQ 4.2.1's zcert_save wrote (tests/golden/zcert/make_golden.c).
    #[test]
    fn reads_czmq_files() {
        let public = Cert::load(format!("{GOLDEN}server.cert")).unwrap();
        assert_eq!(public.public.to_string(), SERVER_PUBLIC);
        assert_eq!(public.secret, None);
        assert_eq!(
            public.metadata,
            vec![
                ("name".to_string(), "server".to_string()),
                ("organization".to_string(), "zre tests".to_string())
            ]
        );
        let secret = Cert::load_secret(format!("{GOLDEN}server.cert")).unwrap();
        assert_eq!(secret.public, public.public);
        let key = z85::encode_key(secret.secret.as_ref().unwrap().as_bytes());
        assert_eq!(key, SERVER_SECRET);
        let direct = Cert::load_secret(format!("{GOLDEN}server.cert_secret")).unwrap();
        assert_eq!(direct, secret);
        let client = Cert::load_secret(format!("{GOLDEN}client.cert")).unwrap();
        assert_eq!(client.metadata, vec![]);
    }

    /// What we write is what CZMQ writes, but for the first comment line.
    #[test]
    fn writes_czmq_layout() {
        let cert = Cert::load_secret(format!("{GOLDEN}server.cert")).unwrap();
        let skip_first = |s: &str| s.lines().skip(1).collect::<Vec<_>>().join("\n");
        assert_eq!(
            skip_first(&cert.public_text("x")),
            skip_first(&golden("server.cert"))
        );
        assert_eq!(
            skip_first(&cert.secret_text("x").unwrap()),
            skip_first(&golden("server.cert_secret"))
        );
        let public_only = Cert::load(format!("{GOLDEN}server.cert")).unwrap();
        assert_eq!(public_only.secret_text("x"), None);
    }

    #[test]
    fn save_never_overwrites_and_hides_the_secret() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("zre-cert-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let cert = Cert::load_secret(format!("{GOLDEN}client.cert")).unwrap();
        let path = dir.join("me.cert");
        cert.save(&path, "now").unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&secret_path(&path)), 0o600);
        assert_eq!(mode(&path) & 0o600, 0o600);
        assert_eq!(Cert::load_secret(&path).unwrap(), cert);
        let before = std::fs::read(&path).unwrap();
        assert!(matches!(
            cert.save(&path, "later"),
            Err(CertError::Exists(_))
        ));
        assert_eq!(std::fs::read(&path).unwrap(), before);
        // Only the secret file there: still nothing written.
        let other = dir.join("other.cert");
        std::fs::write(secret_path(&other), "x").unwrap();
        assert!(matches!(cert.save(&other, "x"), Err(CertError::Exists(_))));
        assert!(!other.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn malformed_files_are_errors() {
        let p = Path::new("f");
        let cases = [
            "",
            "curve\n",
            "curve\n    public-key = \"short\"\n",
            "curve\n    public-key = \"rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf\"\"\n",
            "curve\n  public-key = \"rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7\"\n",
            "curve\n    public-key = \"rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7\"\n    secret-key = \"~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~\"\n",
        ];
        for text in cases {
            assert!(
                matches!(Cert::parse(text, p), Err(CertError::Invalid { .. })),
                "{text:?}"
            );
        }
        let e = Cert::parse("curve\n    public-key = \"abc\"\n", p).unwrap_err();
        assert!(e.to_string().contains("curve/public-key"), "{e}");
        assert!(matches!(
            Cert::load_secret(format!("{GOLDEN}missing")),
            Err(CertError::Io { .. })
        ));
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(text in "[ a-z=\"#\\n-]{0,120}") {
            let _ = Cert::parse(&text, Path::new("f"));
        }
    }
}
