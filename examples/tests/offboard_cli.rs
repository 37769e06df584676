//! The `offboard` binary, run as an operator would: refusals with exit 2, then a
//! tenant offboarded, restored and offboarded again, on a SQLite state.

use std::process::{Command, Output};

fn folder() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("tk-cli-offboard-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn offboard_refuses_typos_then_offboards_restores_and_resumes() {
    let dir = folder();
    let state = format!("sqlite:{}", dir.join("control.db").display());
    let exports = dir.join("exports");
    let run = |binary: &str, args: &[&str]| {
        Command::new(binary)
            .args(args)
            .args(["--state", &state])
            .env_remove("SUPABASE_ACCESS_TOKEN")
            .env_remove("STRIPE_SECRET_KEY")
            .env_remove("TENANT_EXPORT_DIR")
            .output()
            .unwrap()
    };
    let offboard = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--exports", exports.to_str().unwrap()]);
        run(env!("CARGO_BIN_EXE_offboard"), &all)
    };
    let onboarded = run(
        env!("CARGO_BIN_EXE_onboard"),
        &[
            "--company",
            "Acme Pharmacy",
            "--email",
            "owner@acme.example",
        ],
    );
    assert_eq!(onboarded.status.code(), Some(0), "{}", text(&onboarded));

    for (args, expected) in [
        (
            &["start", "Acme Pharmacy"][..],
            "did you mean `acme-pharmacy`?",
        ),
        (&["start", "acme-pharmcy"], "does not exist"),
        (&["restore", "acme-pharmacy"], "nothing to restore"),
        (&["stat", "acme-pharmacy"], "start"),
    ] {
        let refused = offboard(args);
        assert_eq!(
            refused.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&refused)
        );
        assert!(
            text(&refused).contains(expected),
            "{args:?}: {}",
            text(&refused)
        );
    }
    assert!(text(&offboard(&["start", "acme-pharmcy"])).contains("did you mean `acme-pharmacy`?"));

    let retained = offboard(&["start", "acme-pharmacy"]);
    assert_eq!(retained.status.code(), Some(0), "{}", text(&retained));
    let out = text(&retained);
    assert!(out.contains("state:     retained until"), "{out}");
    assert!(out.contains("sha256:"), "{out}");
    assert_eq!(
        std::fs::read_dir(&exports).unwrap().count(),
        2,
        "the export and its checksum"
    );

    // Signing the company up again is refused, not a step to rerun.
    let again = run(
        env!("CARGO_BIN_EXE_onboard"),
        &[
            "--company",
            "Acme Pharmacy",
            "--email",
            "owner@acme.example",
        ],
    );
    assert_eq!(again.status.code(), Some(2), "{}", text(&again));
    assert!(
        text(&again).contains("offboard restore acme-pharmacy"),
        "{}",
        text(&again)
    );

    let restored = offboard(&["restore", "acme-pharmacy"]);
    assert_eq!(restored.status.code(), Some(0), "{}", text(&restored));
    assert!(text(&restored).contains("state:     ready"));

    let resumed = offboard(&["resume"]);
    assert_eq!(resumed.status.code(), Some(0), "{}", text(&resumed));
    assert!(
        text(&resumed).contains("nothing to resume"),
        "{}",
        text(&resumed)
    );

    // A retention of 0 days deletes at once: it must be confirmed.
    let unconfirmed = offboard(&["start", "acme-pharmacy", "--retention-days", "0"]);
    assert_eq!(unconfirmed.status.code(), Some(2), "{}", text(&unconfirmed));
    assert!(
        text(&unconfirmed).contains("--delete-now"),
        "{}",
        text(&unconfirmed)
    );
    let still = offboard(&["restore", "acme-pharmacy"]);
    assert!(
        text(&still).contains("nothing to restore"),
        "untouched: {}",
        text(&still)
    );

    // A mistyped state path is refused, and no state database is made there.
    let typo = dir.join("contrl.db");
    let refused = Command::new(env!("CARGO_BIN_EXE_offboard"))
        .args(["resume", "--state"])
        .arg(format!("sqlite:{}", typo.display()))
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
    assert!(
        text(&refused).contains("no state database at"),
        "{}",
        text(&refused)
    );
    assert!(!typo.exists(), "offboard created {}", typo.display());
    std::fs::remove_dir_all(dir).unwrap();
}
