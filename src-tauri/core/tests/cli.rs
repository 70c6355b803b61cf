//! The `switchyard` binary as a user runs it.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_switchyard"));
    c.env_remove("SWITCHYARD_CONFIG")
        .env_remove("SWITCHYARD_DATA_DIR")
        // Never touch the developer's real keyring.
        .env(
            "DBUS_SESSION_BUS_ADDRESS",
            "unix:path=/nonexistent/switchyard-tests",
        );
    c
}

#[test]
fn key_create_prints_the_key_alone_on_the_last_line_and_list_never_shows_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_str().expect("utf8");
    let out = bin()
        .args([
            "--data-dir",
            data,
            "key",
            "create",
            "vscode",
            "--models",
            "gpt-*",
            "--project",
            "ide",
        ])
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).expect("utf8");
    let last = stdout.lines().last().expect("a line");
    assert!(
        last.starts_with("sy-") && last.len() >= 46 && !last.contains(' '),
        "{last:?}"
    );

    let list = bin()
        .args(["--data-dir", data, "key", "list"])
        .output()
        .expect("runs");
    let listed = String::from_utf8(list.stdout).expect("utf8");
    assert!(listed.contains("vscode") && listed.contains("gpt-*") && listed.contains("ide"));
    assert!(!listed.contains(last), "the key itself is never listed");

    let again = bin()
        .args(["--data-dir", data, "key", "create", "vscode"])
        .output()
        .expect("runs");
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));

    let revoke = bin()
        .args(["--data-dir", data, "key", "revoke", "vscode"])
        .output()
        .expect("runs");
    assert!(revoke.status.success());
    let list = bin()
        .args(["--data-dir", data, "key", "list"])
        .output()
        .expect("runs");
    assert!(String::from_utf8_lossy(&list.stdout).contains("revoked"));
}

#[test]
fn config_check_names_file_line_and_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "[[channels]]\nid = \"openai\"\ntype = \"openai\"\nbucket = \"credit\"\ntimeout = 3\n",
    )
    .expect("write");
    let out = bin()
        .args(["--config", path.to_str().expect("utf8"), "config", "check"])
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.toml:5:1"), "{err}");
    assert!(err.contains("channels[0].timeout"), "{err}");
    assert!(err.contains("unknown field `timeout`"), "{err}");

    std::fs::write(
        &path,
        "[[channels]]\nid = \"openai\"\ntype = \"openai\"\nbucket = \"credit\"\n",
    )
    .expect("write");
    let ok = bin()
        .args(["--config", path.to_str().expect("utf8"), "config", "check"])
        .output()
        .expect("runs");
    assert!(ok.status.success());
    assert!(String::from_utf8_lossy(&ok.stdout).contains("1 channel(s)"));
}

#[test]
fn serve_writes_a_commented_starter_config_on_first_run_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("conf/switchyard.toml");
    let mut guard = crate::helpers::ChildGuard(
        bin()
            .args([
                "--config",
                config.to_str().expect("utf8"),
                "--data-dir",
                dir.path().join("data").to_str().expect("utf8"),
                "serve",
                "--listen",
                "127.0.0.1:0",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawns"),
    );
    let child = &mut guard.0;
    let mut stderr = child.stderr.take().expect("stderr");
    let started = Instant::now();
    let mut text = String::new();
    let mut buf = [0u8; 4096];
    while !text.contains("/v1 (") && started.elapsed() < Duration::from_secs(20) {
        use std::io::Read;
        let n = stderr.read(&mut buf).expect("read");
        if n == 0 {
            break;
        }
        text.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(text.contains("Wrote a starter config"), "{text}");
    let addr = text
        .split("listening on http://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .expect("address printed")
        .to_string();
    let written = std::fs::read_to_string(&config).expect("config written");
    assert!(written
        .lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#')));

    let mut sock = std::net::TcpStream::connect(&addr).expect("listening");
    sock.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .expect("write");
    let mut resp = String::new();
    use std::io::Read;
    sock.read_to_string(&mut resp).expect("read");
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");

    let pid = child.id().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            assert!(status.success(), "clean exit on SIGTERM: {status}");
            break;
        }
        assert!(Instant::now() < deadline, "exits within 10 s of SIGTERM");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn secret_set_refuses_unknown_channels_and_empty_input() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("c.toml");
    std::fs::write(
        &path,
        "[[channels]]\nid = \"openai\"\ntype = \"openai\"\nbucket = \"credit\"\n",
    )
    .expect("write");
    let mut child = bin()
        .args([
            "--config",
            path.to_str().expect("utf8"),
            "secret",
            "set",
            "nope",
        ])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawns");
    drop(child.stdin.take());
    let out = child.wait_with_output().expect("runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no channel `nope`"));

    let mut child = bin()
        .args([
            "--config",
            path.to_str().expect("utf8"),
            "secret",
            "set",
            "openai",
        ])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawns");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"\n")
        .expect("write");
    let out = child.wait_with_output().expect("runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no secret given"));
}
