//! Logging set-up shared by the binaries.

use std::io::IsTerminal;

/// Logs to stderr at `info` (or as `RUST_LOG` says).
pub fn init_logging() {
    init_with_default("info,sqlx=warn");
}

/// Logs to stderr at `default_filter` unless `RUST_LOG` says otherwise; colour only
/// when stderr is a terminal, so that files and log collectors get plain text.
fn init_with_default(default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .try_init();
}

/// A future that resolves on SIGINT or SIGTERM. The handlers are installed when this
/// is called, not when the future is first polled, so a signal that arrives while the
/// server is still starting is not lost (nor does it kill the process).
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let (interrupt, terminate) = {
        use tokio::signal::unix::{signal, SignalKind};
        (
            signal(SignalKind::interrupt()).ok(),
            signal(SignalKind::terminate()).ok(),
        )
    };
    async move {
        #[cfg(unix)]
        {
            let received = |signal: Option<tokio::signal::unix::Signal>| async move {
                match signal {
                    Some(mut signal) => {
                        signal.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                () = received(interrupt) => {}
                () = received(terminate) => {}
            }
        }
        #[cfg(not(unix))]
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
        tracing::info!("shutting down: finishing in-flight requests");
    }
}

/// Logs only warnings (or as `RUST_LOG` says): for binaries that narrate on stdout.
/// sqlx's slow-statement warnings, which print whole statements between the
/// command's own lines, are left out (`RUST_LOG=sqlx::query=warn` shows them).
pub fn init_quiet_logging() {
    init_with_default("warn,sqlx::query=error");
}

/// Writes one line to stdout, like `println!`, but ends the process quietly when
/// the reader has gone away (`migrate status | head`), instead of panicking as
/// `println!` does on a closed pipe. The exit code is 141, what a shell reports for
/// a program that SIGPIPE ended: the command's own result is unknown, so a
/// `set -o pipefail` script does not read a cut-off `status` as a success.
pub fn print_line(line: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let written = out.write_fmt(line).and_then(|()| out.write_all(b"\n"));
    match written {
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => {
            std::process::exit(EXIT_BROKEN_PIPE)
        }
        Err(error) => eprintln!("cannot write to stdout: {error}"),
        Ok(()) => {}
    }
}

/// The exit code of a command whose reader closed the pipe (128 + SIGPIPE).
pub const EXIT_BROKEN_PIPE: i32 = 141;

/// [`print_line`] with `println!`'s arguments.
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::telemetry::print_line(format_args!($($arg)*))
    };
}
