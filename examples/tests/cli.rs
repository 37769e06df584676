//! The `demo` and `onboard` binaries, run as a user would.

use std::process::Command;

fn folder(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("tk-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn demo_runs_end_to_end_and_tells_the_story() {
    let dir = folder("demo");
    let output = Command::new(demo_binary())
        .arg("--dir")
        .arg(&dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for expected in [
        "acme-pharmacy is now active on professional",
        "bluebird-clinic is now past_due",
        "already processed",
        "bluebird-clinic is now suspended",
        "cedar-health is now suspended",
        "wave 0 (canary): 1 tenant",
        "completed (3 succeeded, 0 failed)",
        "cedar-health: retained",
        "31 days later: cedar-health deleted",
    ] {
        assert!(
            stdout.contains(expected),
            "missing `{expected}` in:\n{stdout}"
        );
    }
    let fleet = stdout.split("4. The fleet").nth(1).unwrap();
    let fleet = fleet.split("\n5. ").next().unwrap();
    assert_eq!(fleet.matches("20240127000000").count(), 3, "{fleet}");
    // What remains of the offboarded tenant: its export and checksum.
    let exports: Vec<_> = std::fs::read_dir(dir.join("exports"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        exports
            .iter()
            .any(|name| name.starts_with("cedar-health") && name.ends_with(".sqlite")),
        "{exports:?}"
    );
    assert!(!dir.join("tenants").join("cedar-health.db").exists());
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn onboard_reports_the_tenant_and_resumes_idempotently() {
    let dir = folder("onboard");
    let state = format!("sqlite:{}", dir.join("control.db").display());
    let onboard = |company: &str, email: &str| {
        Command::new(env!("CARGO_BIN_EXE_onboard"))
            .args(["--company", company, "--email", email, "--state", &state])
            .env_remove("SUPABASE_ACCESS_TOKEN")
            .output()
            .unwrap()
    };
    let first = onboard("Zed Labs", "owner@zed.example");
    let stdout = String::from_utf8_lossy(&first.stdout);
    assert_eq!(first.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("tenant_id:   zed-labs"), "{stdout}");
    assert!(stdout.contains("state:       ready"), "{stdout}");
    assert!(dir.join("tenants/zed-labs.db").exists());
    // Onboarding started the trial: the control plane holds a billing state.
    let control = billing_states(&dir.join("control.db"), "zed-labs");
    assert_eq!(control, 1, "a billing state for the onboarded tenant");

    assert_eq!(
        onboard("Zed Labs", "owner@zed.example").status.code(),
        Some(0)
    );
    let other_admin = onboard("Zed Labs", "someone@else.example");
    assert_eq!(other_admin.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&other_admin.stderr).contains("already signed up"));
    let bad = onboard("!", "owner@zed.example");
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("company name"));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn server_names_the_variable_to_fix() {
    let output = Command::new(env!("CARGO_BIN_EXE_server"))
        .args(["--listen", "127.0.0.1:0", "--state", "sqlite::memory:"])
        .env("ADMIN_TOKEN", "short")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("ADMIN_TOKEN"));

    let output = Command::new(env!("CARGO_BIN_EXE_server"))
        .args(["--listen", "127.0.0.1:0", "--state", "mysql://nope"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--state"));
}

#[cfg(unix)]
#[test]
fn server_shuts_down_gracefully_on_sigterm() {
    let dir = folder("server");
    let mut server = Command::new(env!("CARGO_BIN_EXE_server"))
        .args(["--listen", "127.0.0.1:0", "--state"])
        .arg(format!("sqlite:{}", dir.join("control.db").display()))
        .env_remove("ADMIN_TOKEN")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until it listens (its log says so), then ask it to stop.
    let mut log = std::io::BufReader::new(server.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("listening") {
        line.clear();
        assert_ne!(
            std::io::BufRead::read_line(&mut log, &mut line).unwrap(),
            0,
            "server exited early"
        );
    }
    let killed = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    assert!(server.wait().unwrap().success());
    std::fs::remove_dir_all(dir).unwrap();
}

/// How many billing states the control plane at `file` holds for `tenant`.
fn billing_states(file: &std::path::Path, tenant: &str) -> i64 {
    let url = format!("sqlite:{}", file.display());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        let count = sqlx::query_scalar("SELECT count(*) FROM billing_tenants WHERE tenant_id = ?")
            .bind(tenant)
            .fetch_one(&pool)
            .await
            .unwrap();
        pool.close().await;
        count
    })
}

/// The `demo` example, which `cargo test` builds beside the test binaries
/// (`target/<profile>/examples/demo`).
fn demo_binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let demo = profile
        .join("examples")
        .join(format!("demo{}", std::env::consts::EXE_SUFFIX));
    assert!(
        demo.exists(),
        "{} is missing; build it with cargo build -p tenancy-examples --example demo",
        demo.display()
    );
    demo
}

#[test]
fn a_listen_address_in_use_is_named() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let output = Command::new(env!("CARGO_BIN_EXE_server"))
        .args(["--listen", &address, "--state", "sqlite::memory:"])
        .env_remove("ADMIN_TOKEN")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_ne!(output.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(&address) && stderr.contains("--listen"),
        "{stderr}"
    );
}

#[test]
fn each_binary_says_what_it_is() {
    for (binary, name, says) in [
        (env!("CARGO_BIN_EXE_server"), "server", "HTTP service"),
        (
            env!("CARGO_BIN_EXE_onboard"),
            "onboard",
            "Onboard one tenant",
        ),
        (env!("CARGO_BIN_EXE_migrate"), "migrate", "migration set"),
    ] {
        let version = Command::new(binary).arg("--version").output().unwrap();
        let version = String::from_utf8_lossy(&version.stdout);
        assert!(version.starts_with(&format!("{name} ")), "{version}");
        let help = Command::new(binary).arg("--help").output().unwrap();
        let help = String::from_utf8_lossy(&help.stdout);
        assert!(help.contains(says), "{name}: {help}");
    }
}

#[cfg(unix)]
#[test]
fn server_listens_on_a_host_name_and_says_what_turns_billing_links_on() {
    let dir = folder("server-host");
    let mut server = Command::new(env!("CARGO_BIN_EXE_server"))
        .args(["--listen", "localhost:0", "--state"])
        .arg(format!("sqlite:{}", dir.join("control.db").display()))
        .env("ADMIN_TOKEN", "admintoken-0123456789abcdef")
        .env_remove("BILLING_LINK_SECRET")
        .env("NO_COLOR", "1")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Its log names the address it listens on.
    let mut log = std::io::BufReader::new(server.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("listening") {
        line.clear();
        assert_ne!(
            std::io::BufRead::read_line(&mut log, &mut line).unwrap(),
            0,
            "server exited early"
        );
    }
    let address = line
        .split_whitespace()
        .find_map(|word| word.strip_prefix("address="))
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_owned();
    assert!(address.starts_with("127.0.0.1:"), "{line}");
    let port = address.trim_start_matches("127.0.0.1:");
    assert!(
        line.contains(&format!("http://localhost:{port}/admin")),
        "the links name the port given: {line}"
    );

    let mut stream = std::net::TcpStream::connect(&address).unwrap();
    std::io::Write::write_all(
        &mut stream,
        b"GET /api/admin/billing-links/acme HTTP/1.1\r\nHost: localhost\r\n\
          Authorization: Bearer admintoken-0123456789abcdef\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut stream, &mut answer).unwrap();
    let _ = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status();
    let _ = server.wait();
    std::fs::remove_dir_all(dir).unwrap();
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("BILLING_LINK_SECRET"), "{answer}");
}
