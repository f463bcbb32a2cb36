//! The rules that involve several keys or that serde's types cannot express, checked after the
//! configuration is built (an override breaking one is named like a file key).

use super::Config;
use super::error::Problem;
use super::schema::MAX_WAKE_DELAY;
use crate::urls::{Scheme, redact};

/// The admin token the shipped `config/message-center.toml` carries, so the README's first command
/// works; everyone who read the file knows it.
const SAMPLE_ADMIN_TOKEN: &str = "change-me";

/// The shortest admin token accepted on a non-loopback `server.admin_listen`: 32 characters, what
/// `openssl rand -hex 16` prints, too long to guess over the network.
const MIN_EXPOSED_ADMIN_TOKEN_CHARS: usize = 32;

/// Rules that involve several keys or that serde's types cannot express.
pub(super) fn validate(config: &Config) -> Result<(), Problem> {
    let server = &config.server;
    // Port 0 asks the OS for a free port, so two port-0 listeners never collide (tests use it).
    if server.listen == server.admin_listen && server.listen.port() != 0 {
        return Err(Problem::new(
            &["server", "admin_listen"],
            format!(
                "must differ from `server.listen` (both are {})",
                server.listen
            ),
        ));
    }
    if server.max_body_bytes == 0 {
        return Err(Problem::new(
            &["server", "max_body_bytes"],
            "must be at least 1",
        ));
    }
    config.bounces.validate()?;
    config.console.validate()?;
    config.quarantine.validate()?;
    let templates = &config.templates;
    for (key, zero) in [
        ("max_render_fuel", templates.max_render_fuel == 0),
        ("max_output_bytes", templates.max_output_bytes == 0),
        ("render_timeout", templates.render_timeout.is_zero()),
    ] {
        if zero {
            return Err(Problem::new(&["templates", key], "must be greater than 0"));
        }
    }
    if server.max_batch_events == 0 {
        return Err(Problem::new(
            &["server", "max_batch_events"],
            "must be at least 1",
        ));
    }

    for (key, timeout) in [
        ("header_read_timeout", server.header_read_timeout),
        ("body_read_timeout", server.body_read_timeout),
        ("idle_timeout", server.idle_timeout),
    ] {
        if timeout.is_zero() {
            return Err(Problem::new(&["server", key], "must be greater than 0"));
        }
    }
    if server.max_connections == 0 {
        return Err(Problem::new(
            &["server", "max_connections"],
            "must be at least 1",
        ));
    }

    let db = &config.database;
    let url = db.url.as_str();
    if !Scheme::of(url).is_some_and(Scheme::is_database) {
        return Err(Problem::new(
            &["database", "url"],
            format!(
                "`{}` is not supported: expected `sqlite:…`, `postgres://…` or `postgresql://…`",
                redact(url)
            ),
        ));
    }
    if db.max_connections == 0 {
        return Err(Problem::new(
            &["database", "max_connections"],
            "must be at least 1",
        ));
    }
    if db.connect_timeout.is_zero() {
        return Err(Problem::new(
            &["database", "connect_timeout"],
            "must be greater than 0",
        ));
    }

    if config.channels.wake_delay > MAX_WAKE_DELAY {
        return Err(Problem::new(
            &["channels", "wake_delay"],
            "must be at most 1s (it delays every woken delivery round; `0s` claims at once)",
        ));
    }
    for (name, wf) in &config.workflows {
        if wf.interval.is_zero() {
            return Err(Problem::new(
                &["workflows", name, "interval"],
                "must be greater than 0",
            ));
        }
        if wf.timeout.is_zero() {
            return Err(Problem::new(
                &["workflows", name, "timeout"],
                "must be greater than 0",
            ));
        }
        if wf.batch_size == 0 {
            return Err(Problem::new(
                &["workflows", name, "batch_size"],
                "must be at least 1",
            ));
        }
        if wf.wake_delay > MAX_WAKE_DELAY {
            return Err(Problem::new(
                &["workflows", name, "wake_delay"],
                "must be at most 1s (it delays every woken run; `0s` runs at once)",
            ));
        }
        if wf.plugin.as_deref().is_some_and(|p| p.trim().is_empty()) {
            return Err(Problem::new(
                &["workflows", name, "plugin"],
                "must not be empty (leave it out to use the workflow name)",
            ));
        }
    }

    // An empty key would let a request with an empty credential through.
    if let Some(index) = config.auth.api_keys.iter().position(|k| k.is_empty()) {
        return Err(Problem::new(
            &["auth", "api_keys", &format!("[{index}]")],
            "must not be empty",
        ));
    }

    validate_admin_token(config)?;
    validate_plugin_files(config)?;
    validate_execution_instances(config)?;
    if config.retention.purge_interval.is_zero() {
        return Err(Problem::new(
            &["retention", "purge_interval"],
            "must be greater than 0",
        ));
    }
    if let Err((path, message)) = config.adobe.check() {
        return Err(Problem { path, message });
    }
    if let Some(email) = &config.channels.email {
        let checked =
            super::dkim::check(&email.dkim).and_then(|()| super::throttle::check(&email.domains));
        if let Err((path, message)) = checked {
            return Err(Problem { path, message });
        }
    }
    if config.monitoring.window < std::time::Duration::from_secs(60) {
        // The window slides by whole minutes (monitoring/window.rs).
        return Err(Problem::new(
            &["monitoring", "window"],
            "must be at least 1m",
        ));
    }
    if let Err((key, message)) = config.webhooks.check() {
        return Err(Problem::new(&["webhooks", key], message));
    }
    if config.monitoring.refresh.is_zero() {
        return Err(Problem::new(
            &["monitoring", "refresh"],
            "must be greater than 0",
        ));
    }

    if let Err(err) = tracing_subscriber::EnvFilter::try_new(&config.log.level) {
        return Err(Problem::new(
            &["log", "level"],
            format!(
                "`{}` is not a valid tracing filter: {err}",
                config.log.level
            ),
        ));
    }
    Ok(())
}

/// `auth.admin_token` on an admin listener others can reach: not the sample token, not a short one.
/// The admin API reloads code and stops workflows; on loopback only local users reach it, so the
/// sample token keeps working there (and an absent token disables the API wherever it listens).
fn validate_admin_token(config: &Config) -> Result<(), Problem> {
    let listen = config.server.admin_listen;
    let Some(token) = config.auth.admin_token.as_deref() else {
        return Ok(());
    };
    if listen.ip().is_loopback() {
        return Ok(());
    }
    let length = token.chars().count();
    let what = if token == SAMPLE_ADMIN_TOKEN {
        format!("is the sample token `{SAMPLE_ADMIN_TOKEN}` of the shipped configuration")
    } else if length < MIN_EXPOSED_ADMIN_TOKEN_CHARS {
        format!("is {length} characters long")
    } else {
        return Ok(());
    };
    Err(Problem::new(
        &["auth", "admin_token"],
        format!(
            "{what}, and `server.admin_listen` ({listen}) is not a loopback address: anyone who reaches it \
             could reload plugins and stop workflows. Set a random token of at least \
             {MIN_EXPOSED_ADMIN_TOKEN_CHARS} characters (e.g. `openssl rand -hex 32`), or keep the admin \
             listener on 127.0.0.1"
        ),
    ))
}

/// `plugins.files`: at least one entry, each the bare file name of a library of this platform, once.
fn validate_plugin_files(config: &Config) -> Result<(), Problem> {
    let Some(files) = &config.plugins.files else {
        return Ok(());
    };
    if files.is_empty() {
        return Err(Problem::new(
            &["plugins", "files"],
            "must list at least one library; leave it out to load every library in `plugins.dir`",
        ));
    }
    let extension = std::env::consts::DLL_EXTENSION;
    let mut seen = std::collections::BTreeSet::new();
    for (index, file) in files.iter().enumerate() {
        let at = format!("[{index}]");
        let problem = |message: String| Problem::new(&["plugins", "files", &at], message);
        if file.trim().is_empty() {
            return Err(problem("must not be empty".to_owned()));
        }
        if file.contains('/') || file == "." || file == ".." || file.contains('\0') {
            return Err(problem(format!(
                "`{file}` is not a file name: list names of files in `plugins.dir`, not paths"
            )));
        }
        if std::path::Path::new(file)
            .extension()
            .is_none_or(|ext| ext != extension)
        {
            return Err(problem(format!(
                "`{file}` is not a plugin library: its name must end in `.{extension}`"
            )));
        }
        if !seen.insert(file.as_str()) {
            return Err(problem(format!("`{file}` is listed twice")));
        }
    }
    Ok(())
}

/// `[[execution_instances]]`: unique names, HTTP URLs, only where something archives them.
fn validate_execution_instances(config: &Config) -> Result<(), Problem> {
    let mut seen = std::collections::BTreeSet::new();
    for (index, instance) in config.execution_instances.iter().enumerate() {
        let at = format!("[{index}]");
        let name = instance.name.trim();
        if name.is_empty() || name.len() > 100 || name.contains(['/', '?', '#']) {
            return Err(Problem::new(
                &["execution_instances", &at, "name"],
                "must be 1 to 100 characters, without `/`, `?` or `#`",
            ));
        }
        if !seen.insert(name.to_owned()) {
            return Err(Problem::new(
                &["execution_instances", &at, "name"],
                format!("`{name}` is used by two entries; names must be unique"),
            ));
        }
        if !Scheme::of(&instance.url).is_some_and(Scheme::is_http) {
            return Err(Problem::new(
                &["execution_instances", &at, "url"],
                format!(
                    "`{}` is not an http:// or https:// URL",
                    redact(&instance.url)
                ),
            ));
        }
        if instance.timeout.is_zero() {
            return Err(Problem::new(
                &["execution_instances", &at, "timeout"],
                "must be greater than 0",
            ));
        }
    }
    if !config.execution_instances.is_empty() && !config.instance.role.controls() {
        return Err(Problem::new(
            &["execution_instances"],
            format!(
                "only a control instance archives execution instances; set `instance.role` to \"control\" or \"both\" (it is \"{}\")",
                config.instance.role
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;

    #[test]
    fn execution_instances_and_retention() {
        let text = r#"
[instance]
role = "control"

[[execution_instances]]
name = "exec-1"
url = "http://10.0.0.1:8080/"
api_key = "secret"

[[execution_instances]]
name = "exec-2"
url = "https://exec-2.internal"
timeout = "2s"

[retention]
finished_events = "2d"
wait_for_archive = false
"#;
        let config = Config::from_toml_str(text, no_env()).expect("valid");
        assert_eq!(config.execution_instances.len(), 2);
        assert_eq!(
            config.execution_instances[0].api_key.as_deref(),
            Some("secret")
        );
        assert_eq!(
            config.execution_instances[0].timeout,
            Duration::from_secs(10)
        );
        assert_eq!(
            config.execution_instances[1].timeout,
            Duration::from_secs(2)
        );
        assert_eq!(
            config.retention.finished_events,
            Duration::from_secs(2 * 86_400)
        );
        assert_eq!(config.retention.purge_interval, Duration::from_secs(300));
        assert!(
            !format!("{:?}", config.execution_instances[0]).contains("secret"),
            "the API key is never logged"
        );

        let defaults = Config::from_toml_str("", no_env()).expect("defaults");
        assert!(defaults.retention.wait_for_archive, "safe by default");

        let duplicate = text.replace("exec-2", "exec-1");
        let (key, message) = invalid(&duplicate, no_env());
        assert_eq!(key, "execution_instances[1].name");
        assert!(message.contains("unique"), "{message}");

        let (key, _) = invalid(
            &text.replace("https://exec-2.internal", "exec-2:80"),
            no_env(),
        );
        assert_eq!(key, "execution_instances[1].url");

        let (key, message) = invalid(
            &text.replace("role = \"control\"", "role = \"execution\""),
            no_env(),
        );
        assert_eq!(key, "execution_instances");
        assert!(message.contains("control"), "{message}");

        let (key, _) = invalid("[retention]\npurge_interval = \"0s\"", no_env());
        assert_eq!(key, "retention.purge_interval");
    }

    #[test]
    fn bad_database_url_is_named() {
        let (key, message) = invalid("[database]\nurl = \"mysql://x/y\"\n", no_env());
        assert_eq!(key, "database.url");
        assert!(message.contains("mysql://x/y"), "{message}");
        let (key, message) = invalid("[database]\nurl = \"ftp://u:pw@h/\"\n", no_env());
        assert_eq!(key, "database.url");
        assert!(!message.contains("pw"), "password leaked: {message}");
        for ok in ["sqlite::memory:", "postgresql://h/db", "postgres://h/db"] {
            let text = format!("[database]\nurl = \"{ok}\"\n");
            Config::from_toml_str(&text, no_env()).expect(ok);
        }
    }

    #[test]
    fn workflow_rules_are_checked() {
        let (key, _) = invalid("[workflows.a]\ninterval = \"0s\"\n", no_env());
        assert_eq!(key, "workflows.a.interval");
        let (key, _) = invalid("[workflows.a]\ntimeout = 0\n", no_env());
        assert_eq!(key, "workflows.a.timeout");
        let (key, _) = invalid("[workflows.a]\nbatch_size = 0\n", no_env());
        assert_eq!(key, "workflows.a.batch_size");
        let (key, _) = invalid("[workflows.a]\nbatch_size = -1\n", no_env());
        assert_eq!(key, "workflows.a.batch_size");
        let (key, message) = invalid("[workflows.a]\ninterval_ms = 5\n", no_env());
        assert_eq!(key, "workflows.a.interval_ms");
        assert!(message.contains("reserved"), "{message}");
        let (key, _) = invalid("[workflows]\na = 5\n", no_env());
        assert_eq!(key, "workflows.a");
    }

    #[test]
    fn cross_key_rules_are_checked() {
        let text = "[server]\nlisten = \"127.0.0.1:9000\"\nadmin_listen = \"127.0.0.1:9000\"\n";
        let (key, _) = invalid(text, no_env());
        assert_eq!(key, "server.admin_listen");
        // Two OS-assigned ports never collide.
        let text = "[server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\n";
        Config::from_toml_str(text, no_env()).expect("port 0 twice is fine");

        let (key, _) = invalid("[log]\nlevel = \"info,foo=loud\"\n", no_env());
        assert_eq!(key, "log.level");
        let (key, _) = invalid("[auth]\napi_keys = [\"ok\", \"\"]\n", no_env());
        assert_eq!(key, "auth.api_keys[1]");
        let (key, _) = invalid("[auth]\napi_keys = [\"ok\", 3]\n", no_env());
        assert_eq!(key, "auth.api_keys[1]");
    }

    #[test]
    fn database_and_instance_url_schemes_are_read_as_the_connectors_read_them() {
        // Schemes are case-insensitive, as `db::connect` and reqwest read them.
        for ok in ["SQLite::memory:", "Postgres://h/db", "POSTGRESQL://h/db"] {
            let text = format!("[database]\nurl = \"{ok}\"\n");
            let config = Config::from_toml_str(&text, no_env()).expect(ok);
            assert_eq!(config.is_sqlite(), ok.starts_with("SQLite"), "{ok}");
        }
        // A network scheme without an authority is not a PostgreSQL url.
        let (key, _) = invalid("[database]\nurl = \"postgres:mc\"\n", no_env());
        assert_eq!(key, "database.url");
        // The password of a query parameter is hidden too.
        let (key, message) = invalid("[database]\nurl = \"mysql://h/db?password=pw\"\n", no_env());
        assert_eq!(key, "database.url");
        assert!(message.contains("mysql://h/db?password=***"), "{message}");

        let text = "[instance]\nrole = \"control\"\n[[execution_instances]]\nname = \"e\"\nurl = \"HTTPS://e.internal\"\n";
        Config::from_toml_str(text, no_env()).expect("an upper-case scheme is an https url");
        let (key, message) = invalid(
            &text.replace("HTTPS://e.internal", "ftp://u:pw@e.internal"),
            no_env(),
        );
        assert_eq!(key, "execution_instances[0].url");
        assert!(message.contains("ftp://u:***@e.internal"), "{message}");
    }

    #[test]
    fn exposed_admin_listener_needs_a_strong_token() {
        let exposed = |token: &str| {
            format!(
                "[server]\nadmin_listen = \"0.0.0.0:8081\"\n[auth]\nadmin_token = \"{token}\"\n"
            )
        };
        let (key, message) = invalid(&exposed("change-me"), no_env());
        assert_eq!(key, "auth.admin_token");
        assert!(message.contains("sample token"), "{message}");
        assert!(message.contains("0.0.0.0:8081"), "{message}");

        let short = "x".repeat(31);
        let (key, message) = invalid(&exposed(&short), no_env());
        assert_eq!(key, "auth.admin_token");
        assert!(message.contains("31 characters"), "{message}");
        assert!(
            !message.contains(&short),
            "the token is not printed: {message}"
        );

        let strong = "0123456789abcdef0123456789abcdef";
        Config::from_toml_str(&exposed(strong), no_env()).expect("32 characters");
        // A routable address or IPv6 is no safer than 0.0.0.0.
        let text = exposed("change-me").replace("0.0.0.0:8081", "[::]:8081");
        assert_eq!(invalid(&text, no_env()).0, "auth.admin_token");
        let text = exposed("change-me").replace("0.0.0.0:8081", "10.1.2.3:8081");
        assert_eq!(invalid(&text, no_env()).0, "auth.admin_token");
        // Without a token the admin API refuses every call, wherever it listens.
        let text = "[server]\nadmin_listen = \"0.0.0.0:8081\"\n[auth]\nadmin_token = \"\"\n";
        Config::from_toml_str(text, no_env()).expect("no token");
        Config::from_toml_str("[server]\nadmin_listen = \"0.0.0.0:8081\"\n", no_env())
            .expect("no token");
    }

    #[test]
    fn loopback_admin_listener_keeps_the_sample_token() {
        for listen in ["127.0.0.1:8081", "127.0.0.2:0", "[::1]:8081"] {
            let text = format!(
                "[server]\nadmin_listen = \"{listen}\"\n[auth]\nadmin_token = \"change-me\"\n"
            );
            Config::from_toml_str(&text, no_env()).expect(listen);
        }
        let shipped = include_str!("../../../config/message-center.toml");
        let config = Config::from_toml_str(shipped, no_env()).expect("the shipped file");
        assert_eq!(config.auth.admin_token.as_deref(), Some("change-me"));
        assert_eq!(
            config.plugins.files.as_deref(),
            Some(
                &[
                    "librt_events_processing.so".to_owned(),
                    "libbatch_events_processing.so".to_owned(),
                    "libupdate_events_status.so".to_owned(),
                    "libarchiving.so".to_owned(),
                    "libwebhook_delivery.so".to_owned(),
                ][..]
            ),
            "the shipped file loads the five shipped workflows and no test plugin"
        );
        // Exposing the shipped file's listener is refused, and the variable that did it is named.
        let (key, message) = invalid(shipped, env(&[("MC_SERVER__ADMIN_LISTEN", "0.0.0.0:8081")]));
        assert_eq!(key, "auth.admin_token");
        assert!(message.contains("sample token"), "{message}");
        let (key, message) = invalid(
            shipped,
            env(&[
                ("MC_SERVER__ADMIN_LISTEN", "0.0.0.0:8081"),
                ("MC_AUTH__ADMIN_TOKEN", "short"),
            ]),
        );
        assert_eq!(key, "auth.admin_token");
        assert!(message.contains("MC_AUTH__ADMIN_TOKEN"), "{message}");
    }

    #[test]
    fn plugin_files_are_file_names_of_libraries() {
        let files = |list: &str| format!("[plugins]\nfiles = {list}\n");
        let config = Config::from_toml_str(&files(r#"["liba.so", "libb.so"]"#), no_env())
            .expect("two libraries");
        assert_eq!(
            config.plugins.files.as_deref(),
            Some(&["liba.so".to_owned(), "libb.so".to_owned()][..])
        );
        let defaults = Config::from_toml_str("", no_env()).expect("defaults");
        assert_eq!(defaults.plugins.files, None, "absent: every library");

        let (key, message) = invalid(&files("[]"), no_env());
        assert_eq!(key, "plugins.files");
        assert!(message.contains("leave it out"), "{message}");
        for (list, index, says) in [
            (r#"["liba.so", ""]"#, 1, "empty"),
            (r#"["  "]"#, 0, "empty"),
            (r#"["../liba.so"]"#, 0, "not paths"),
            (r#"["/opt/mc/liba.so"]"#, 0, "not paths"),
            (r#"["sub/liba.so"]"#, 0, "not paths"),
            (r#"[".."]"#, 0, "not paths"),
            (r#"["liba.so", "README"]"#, 1, "must end in `.so`"),
            (r#"["liba.so.bak"]"#, 0, "must end in `.so`"),
            (r#"["liba.so", "libb.so", "liba.so"]"#, 2, "twice"),
        ] {
            let (key, message) = invalid(&files(list), no_env());
            assert_eq!(key, format!("plugins.files[{index}]"), "{list}");
            assert!(message.contains(says), "{list}: {message}");
        }
        let (key, _) = invalid(&files(r#"["liba.so", 3]"#), no_env());
        assert_eq!(key, "plugins.files[1]");
        let (key, message) = invalid("", env(&[("MC_PLUGINS__FILES", r#"["x/y.so"]"#)]));
        assert_eq!(key, "plugins.files[0]");
        assert!(message.contains("MC_PLUGINS__FILES"), "{message}");
    }
}
