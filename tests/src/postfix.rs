//! A real Postfix (Debian's `postfix` package) run as a throwaway relay: its own configuration and queue
//! under a temporary directory, `postfix -c DIR start`, an SMTP listener on a loopback port, and a
//! transport map sending each destination domain to a loopback port (no DNS). Its log goes to
//! `DIR/maillog` (printed when a test fails). Stopped with `postfix -c DIR stop` on drop.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::process::tail_of_file;

/// Where Debian installs the Postfix command and its services' master.cf.
const POSTFIX: &str = "/usr/sbin/postfix";
const DEBIAN_MASTER_CF: &str = "/etc/postfix/master.cf";

pub struct PostfixRelay {
    dir: TempDir,
    port: u16,
    running: bool,
}

/// A port that was free a moment ago (Postfix binds it itself).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind a free port")
}

impl PostfixRelay {
    /// Starts Postfix listening on a free loopback port, relaying mail for each `(domain, port)` of
    /// `routes` to `127.0.0.1:port`. Panics (with the log) if it does not listen within 30 s.
    pub fn start(routes: &[(&str, u16)]) -> PostfixRelay {
        assert!(
            Path::new(POSTFIX).exists(),
            "Postfix is required: `DEBIAN_FRONTEND=noninteractive apt-get install -y postfix` (.ci/run does it)"
        );
        let dir = tempfile::Builder::new()
            .prefix("mc-postfix-")
            .tempdir()
            .expect("create the Postfix directory");
        let root = dir.path();
        // Postfix's daemons run as the `postfix` user: they must reach the queue.
        fs::set_permissions(root, fs::Permissions::from_mode(0o755)).unwrap();
        for sub in ["queue", "data"] {
            fs::create_dir(root.join(sub)).unwrap();
        }
        let status = Command::new("chown")
            .arg("postfix")
            .arg(root.join("data"))
            .status()
            .expect("run chown");
        assert!(status.success(), "chown postfix data");
        let port = free_port();
        let transport: String = routes
            .iter()
            .map(|(domain, port)| format!("{domain} smtp:[127.0.0.1]:{port}\n"))
            .collect();
        fs::write(root.join("transport"), transport).unwrap();
        let main_cf = format!(
            "compatibility_level = 3.6\n\
             queue_directory = {root}/queue\n\
             data_directory = {root}/data\n\
             mail_owner = postfix\n\
             setgid_group = postdrop\n\
             myhostname = relay.test\n\
             mydomain = relay.test\n\
             myorigin = relay.test\n\
             mydestination =\n\
             inet_interfaces = 127.0.0.1\n\
             inet_protocols = ipv4\n\
             mynetworks = 127.0.0.0/8\n\
             smtpd_relay_restrictions = permit_mynetworks, reject\n\
             transport_maps = texthash:{root}/transport\n\
             smtp_dns_support_level = disabled\n\
             alias_maps =\n\
             alias_database =\n\
             local_recipient_maps =\n\
             maillog_file_prefixes = {root}\n\
             maillog_file = {root}/maillog\n\
             smtputf8_enable = no\n\
             biff = no\n",
            root = root.display()
        );
        fs::write(root.join("main.cf"), main_cf).unwrap();
        fs::write(root.join("master.cf"), master_cf(port)).unwrap();
        let mut relay = PostfixRelay {
            dir,
            port,
            running: false,
        };
        let output = relay.postfix("start");
        assert!(
            output.status.success(),
            "postfix start failed: {}{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            tail_of_file(&relay.maillog(), 40)
        );
        relay.running = true;
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "Postfix does not listen on {port}:\n{}",
                tail_of_file(&relay.maillog(), 40)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        relay
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn maillog(&self) -> PathBuf {
        self.dir.path().join("maillog")
    }

    pub fn log_tail(&self, lines: usize) -> String {
        tail_of_file(&self.maillog(), lines)
    }

    fn postfix(&self, verb: &str) -> std::process::Output {
        Command::new(POSTFIX)
            .arg("-c")
            .arg(self.dir.path())
            .arg(verb)
            .output()
            .expect("run postfix")
    }
}

/// Debian's master.cf, every service unchrooted (the throwaway queue has no chroot tree) and the SMTP
/// listener moved to `127.0.0.1:port`.
fn master_cf(port: u16) -> String {
    let debian =
        fs::read_to_string(DEBIAN_MASTER_CF).expect("read Debian's /etc/postfix/master.cf");
    let mut out = String::new();
    for line in debian.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        if line.starts_with(char::is_whitespace) || fields.len() < 8 {
            out.push_str(line);
            out.push('\n');
            continue;
        }
        let mut fields: Vec<String> = fields.iter().map(|f| (*f).to_owned()).collect();
        if fields[0] == "smtp" && fields[1] == "inet" {
            fields[0] = format!("127.0.0.1:{port}");
        }
        fields[4] = "n".to_owned();
        out.push_str(&fields.join("  "));
        out.push('\n');
    }
    out
}

impl Drop for PostfixRelay {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "=== Postfix maillog tail ===\n{}\n=== end ===",
                self.log_tail(60)
            );
        }
        if self.running {
            let _ = self.postfix("stop");
        }
    }
}
