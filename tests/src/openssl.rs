//! Throwaway keys and certificates made with the `openssl` command: a TLS certificate for the test
//! SMTP server, DKIM keys with the DNS record a verifier needs.

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use tempfile::TempDir;

/// Runs `openssl args...`, panicking with its stderr when it fails; its stdout.
pub fn openssl(args: &[&str]) -> Vec<u8> {
    let output = Command::new("openssl")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run openssl: {e}"));
    assert!(
        output.status.success(),
        "openssl {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 temporary path")
}

/// A throwaway CA and a server certificate it signed for `127.0.0.1` and `localhost`, with its key.
pub struct TestCert {
    /// The CA's certificate: what a client must trust (`tls_ca_file`).
    pub ca: PathBuf,
    /// The server's certificate.
    pub cert: PathBuf,
    pub key: PathBuf,
    _dir: TempDir,
}

impl TestCert {
    pub fn generate() -> TestCert {
        let dir = tempfile::Builder::new()
            .prefix("mc-cert-")
            .tempdir()
            .expect("create certificate directory");
        let file = |name: &str| dir.path().join(name);
        let (ca, ca_key) = (file("ca.pem"), file("ca-key.pem"));
        let (cert, key, csr, ext) = (
            file("cert.pem"),
            file("key.pem"),
            file("cert.csr"),
            file("ext.cnf"),
        );
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=Message Center test CA",
            "-keyout",
            path_str(&ca_key),
            "-out",
            path_str(&ca),
        ]);
        openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            path_str(&key),
            "-out",
            path_str(&csr),
        ]);
        std::fs::write(
            &ext,
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )
        .expect("write the extensions");
        openssl(&[
            "x509",
            "-req",
            "-in",
            path_str(&csr),
            "-CA",
            path_str(&ca),
            "-CAkey",
            path_str(&ca_key),
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            path_str(&ext),
            "-out",
            path_str(&cert),
        ]);
        TestCert {
            ca,
            cert,
            key,
            _dir: dir,
        }
    }
}

/// The algorithm of a [`DkimTestKey`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DkimAlgorithm {
    /// RSA of this many bits.
    Rsa(u32),
    Ed25519,
}

/// A DKIM private key (PKCS#8 PEM, as `openssl genpkey` writes it) and the TXT record publishing it.
pub struct DkimTestKey {
    pub private_key_file: PathBuf,
    /// `v=DKIM1; k=rsa|ed25519; p=...`.
    pub dns_txt: String,
    _dir: TempDir,
}

impl DkimTestKey {
    pub fn generate(algorithm: DkimAlgorithm) -> DkimTestKey {
        let dir = tempfile::Builder::new()
            .prefix("mc-dkim-")
            .tempdir()
            .expect("create key directory");
        let file = dir.path().join("dkim.pem");
        let bits;
        let mut args = vec!["genpkey", "-algorithm"];
        match algorithm {
            DkimAlgorithm::Rsa(n) => {
                bits = format!("rsa_keygen_bits:{n}");
                args.extend(["rsa", "-pkeyopt", &bits]);
            }
            DkimAlgorithm::Ed25519 => args.push("ed25519"),
        }
        args.extend(["-out", path_str(&file)]);
        openssl(&args);
        let spki = openssl(&["pkey", "-in", path_str(&file), "-pubout", "-outform", "DER"]);
        let (kind, public) = match algorithm {
            DkimAlgorithm::Rsa(_) => ("rsa", spki),
            // RFC 8463: the bare 32-byte key, the end of its SubjectPublicKeyInfo.
            DkimAlgorithm::Ed25519 => ("ed25519", spki[spki.len() - 32..].to_vec()),
        };
        DkimTestKey {
            private_key_file: file,
            dns_txt: format!("v=DKIM1; k={kind}; p={}", STANDARD.encode(&public)),
            _dir: dir,
        }
    }
}
