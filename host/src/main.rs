//! The `message-center` binary: `serve`, `check-plugin`, `migrate`, `hash-password`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use message_center::config::Config;
use message_center::{db, plugins, server, telemetry, urls};

/// mimalloc instead of glibc's malloc: under ingestion load glibc spent about 11 % of the server's CPU in
/// malloc/free (consolidation of freed chunks), much of it on the group-commit writer's path, which
/// every request waits for. Plugins keep their own allocator: every buffer crossing the boundary is
/// freed by the side that allocated it.
///
/// Built with its `no_thp` feature (the root `Cargo.toml`): otherwise mimalloc asks for transparent huge
/// pages on its arenas, and each first touch of a 2 MiB region (after start, and again after mimalloc
/// hands memory back) is zeroed whole in the page-fault handler: `clear_page_erms` was 11 % of all the
/// machine's CPU samples while the pipeline bench drained its 20,000 batch events, and the drain ran 24 %
/// faster without it (BENCHMARKS.md, session 14).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "message-center",
    version,
    about = "Transactional messaging server"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the server.
    Serve {
        /// TOML configuration file; MC_<SECTION>__<KEY> environment variables override it.
        #[arg(long, short, default_value = "config/message-center.toml")]
        config: PathBuf,
    },
    /// Load a plugin library as the server would and print its declaration, or why it would be refused.
    CheckPlugin {
        file: PathBuf,
        /// Refuse a plugin built by another rustc, as `[plugins] require_same_rustc = true` does.
        #[arg(long)]
        require_same_rustc: bool,
    },
    /// Apply pending database migrations and exit.
    Migrate {
        #[arg(long, short, default_value = "config/message-center.toml")]
        config: PathBuf,
    },
    /// Read a password from standard input (one line) and print its argon2id PHC string, for
    /// `[[console.users]] password_hash`. Never from the command line, where `ps` and shell history
    /// would show it.
    HashPassword,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::CheckPlugin {
            file,
            require_same_rustc,
        } => check_plugin(&file, require_same_rustc),
        Command::Serve { config } => report(serve(&config)),
        Command::Migrate { config } => report(migrate(&config)),
        Command::HashPassword => report(hash_password()),
    }
}

fn report(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("message-center: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("mc-worker")
        .build()
        .context("cannot start the async runtime")
}

fn load_config(path: &std::path::Path) -> anyhow::Result<Config> {
    let config = Config::load(path)?;
    telemetry::init(&config.log).context("cannot set up logging")?;
    Ok(config)
}

fn serve(path: &std::path::Path) -> anyhow::Result<()> {
    let config = load_config(path)?;
    let runtime = runtime()?;
    let result = runtime.block_on(server::run(config));
    // A plugin thread blocked forever must not keep the process alive after a clean shutdown.
    runtime.shutdown_timeout(Duration::from_secs(1));
    Ok(result?)
}

fn migrate(path: &std::path::Path) -> anyhow::Result<()> {
    let config = load_config(path)?;
    runtime()?.block_on(async {
        let db = db::connect(
            &config.database.url,
            config.database.max_connections,
            config.database.connect_timeout,
        )
        .await?;
        db::migrate(&db).await?;
        println!(
            "migrations applied to {}",
            urls::redact(&config.database.url)
        );
        anyhow::Ok(())
    })
}

fn hash_password() -> anyhow::Result<()> {
    use std::io::{BufRead, IsTerminal};
    if std::io::stdin().is_terminal() {
        eprintln!("password (input is shown; pipe it in to hide it): ");
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    let password = line.trim_end_matches(['\r', '\n']);
    anyhow::ensure!(!password.is_empty(), "the password is empty");
    let hash = message_center::console::hash_password(password).map_err(anyhow::Error::msg)?;
    println!("{hash}");
    Ok(())
}

fn check_plugin(file: &std::path::Path, require_same_rustc: bool) -> ExitCode {
    match plugins::check_plugin(file, require_same_rustc) {
        Ok(info) => {
            println!("file:          {}", file.display());
            println!("name:          {}", info.name);
            println!("version:       {}", info.version);
            println!("description:   {}", info.description);
            println!(
                "plugin-api:    {} (ABI version {})",
                info.api_version, info.abi_version
            );
            println!("rustc:         {}", info.rustc_version);
            println!(
                "host:          ABI version {}, {}",
                mc_plugin_api::abi::ABI_VERSION,
                plugins::loader::host_rustc_version()
            );
            println!("verdict:       accepted");
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("verdict:       refused");
            println!("reason:        {e}");
            ExitCode::FAILURE
        }
    }
}
