//! The web workbench end to end, in a real browser: Debian's headless Chromium driven by Playwright
//! (`e2e/workbench.mjs`, npm package `playwright-core`) against `baozhang demo` serving a small synthetic
//! county on a temporary SQLite database. Each role logs in; the county drills down from the county to a
//! person; the hospital settles a bill in the window and its PDF slip is checked with `pdftotext`; a table
//! is exported to Excel and read back; a village cadre is refused another village and marks a finding
//! done; the dashboard must not overflow at phone width. Screenshots of the main pages go to
//! `<target>/screenshots/` (`$CARGO_TARGET_DIR/screenshots`, else `<workspace>/target/screenshots`).
//!
//! Needs node (20 or later), npm, `/usr/bin/chromium` (or `$CHROMIUM`), pdftotext and a CJK font:
//! `apt-get install chromium nodejs npm poppler-utils fonts-noto-cjk`. Without them the test fails and
//! says so, unless `BAOZHANG_SKIP_BROWSER=1`, which skips it with a notice. `npm ci` runs in `e2e/` when
//! `e2e/node_modules` lacks Playwright.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Small enough for a debug build (about 11,000 residents); large enough that every level has data.
const SCALE: &str = "0.02";
/// Generating, importing, reconciling and settling the demo county.
const DEMO_PATIENCE: Duration = Duration::from_secs(300);
/// The browser test itself.
const BROWSER_PATIENCE: Duration = Duration::from_secs(300);
const INSTALL_HINT: &str = "apt-get install chromium nodejs npm poppler-utils fonts-noto-cjk";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("the workspace directory")
}

/// The workspace's target directory: `$CARGO_TARGET_DIR` (relative to the workspace) if set.
fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR").filter(|v| !v.is_empty()) {
        Some(d) => workspace().join(d),
        None => workspace().join("target"),
    }
}

fn chromium() -> String {
    std::env::var("CHROMIUM").ok().filter(|v| !v.is_empty()).unwrap_or_else(|| "/usr/bin/chromium".into())
}

/// Runs a command, returning its stdout if it ran and succeeded.
fn output_of(program: &str, args: &[&str]) -> Option<String> {
    let o = Command::new(program).args(args).stdin(Stdio::null()).output().ok()?;
    o.status.success().then(|| format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)))
}

/// What is missing to run the browser test (empty: nothing).
fn missing_tools() -> Vec<String> {
    let mut missing = Vec::new();
    match output_of("node", &["--version"]) {
        None => missing.push("node (package nodejs)".to_string()),
        Some(v) => {
            let major: u32 = v.trim().trim_start_matches('v').split('.').next().and_then(|m| m.parse().ok()).unwrap_or(0);
            if major < 20 {
                missing.push(format!("node 20 or later (found {}; Playwright needs 20)", v.trim()));
            }
        }
    }
    let chromium = chromium();
    if !Path::new(&chromium).exists() {
        missing.push(format!("{chromium} (package chromium)"));
    }
    if output_of("pdftotext", &["-v"]).is_none() {
        missing.push("pdftotext (package poppler-utils)".into());
    }
    // A CJK font, for the screenshots and the PDF slips (only checked where fontconfig can say).
    if let Some(fonts) = output_of("fc-list", &[":lang=zh", "family"]) {
        if fonts.trim().is_empty() {
            missing.push("a Chinese font (package fonts-noto-cjk)".into());
        }
    }
    missing
}

/// Installs Playwright (the lock file's exact version) into `e2e/node_modules` unless it is there.
fn ensure_playwright(e2e: &Path) {
    if e2e.join("node_modules/playwright-core/package.json").exists() {
        return;
    }
    println!("e2e: installing playwright-core with `npm ci` in {}", e2e.display());
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(e2e)
        .stdin(Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("could not run npm ({e}); install it: {INSTALL_HINT}"));
    assert!(
        status.success(),
        "`npm ci` in {} failed ({status}): the npm registry must be reachable once to install playwright-core",
        e2e.display()
    );
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local address").port()
}

/// Lines of a child's output, echoed (captured by the test harness unless --nocapture) and forwarded.
fn forward_lines(r: impl Read + Send + 'static, prefix: &'static str, tx: Option<mpsc::Sender<String>>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines() {
            let Ok(line) = line else { break };
            println!("{prefix}{line}");
            if let Some(tx) = &tx {
                let _ = tx.send(line);
            }
        }
    })
}

/// The demo server; stopped (SIGTERM, then SIGKILL) when dropped, so a failing test leaves nothing running.
struct Demo {
    child: Child,
    log: PathBuf,
}

impl Demo {
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(60)..].join("\n")
    }

    /// SIGTERM, then the exit status (SIGKILL after 20 s).
    fn stop(&mut self) -> Option<ExitStatus> {
        if let Ok(Some(s)) = self.child.try_wait() {
            return Some(s);
        }
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(20) {
            if let Ok(Some(s)) = self.child.try_wait() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        self.child.wait().ok();
        None
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        self.stop();
    }
}

fn healthy(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else { return false };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    if s.write_all(format!("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n").as_bytes()).is_err() {
        return false;
    }
    let mut resp = String::new();
    let _ = s.read_to_string(&mut resp);
    resp.lines().next().is_some_and(|l| l.contains(" 200 ")) && resp.contains("\"ok\"")
}

#[test]
fn workbench_in_a_real_browser() {
    if std::env::var("BAOZHANG_SKIP_BROWSER").is_ok_and(|v| v == "1") {
        println!("\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!");
        println!("!! BAOZHANG_SKIP_BROWSER=1: the workbench browser test (e2e/workbench.mjs) was NOT run.");
        println!("!! Nothing about the web pages has been checked. Unset it to run the test.");
        println!("!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n");
        eprintln!("warning: workbench_e2e skipped (BAOZHANG_SKIP_BROWSER=1)");
        return;
    }
    let missing = missing_tools();
    assert!(
        missing.is_empty(),
        "the workbench browser test needs: {}.\nInstall them (Debian): {INSTALL_HINT}\n\
         (or set BAOZHANG_SKIP_BROWSER=1 to skip this test, which then checks nothing)",
        missing.join(", ")
    );
    let e2e = workspace().join("e2e");
    ensure_playwright(&e2e);
    let shots = std::env::var_os("SCREENSHOT_DIR").map(PathBuf::from).unwrap_or_else(|| target_dir().join("screenshots"));
    std::fs::create_dir_all(&shots).expect("the screenshot directory");

    // The demo county, served on a free port.
    let started = Instant::now();
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let port = free_port();
    let log = tmp.path().join("server.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_baozhang"))
        .args(["demo", "--scale", SCALE])
        .args(["--database-url", &format!("sqlite://{}", tmp.path().join("e2e.db").display())])
        .args(["--dir", &tmp.path().join("data").display().to_string(), "--addr", &format!("127.0.0.1:{port}")])
        .current_dir(tmp.path())
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(File::create(&log).expect("the server's log file"))
        .spawn()
        .expect("start baozhang demo");
    let (tx, rx) = mpsc::channel();
    let out = child.stdout.take().expect("the demo's stdout");
    let mut demo = Demo { child, log };
    forward_lines(out, "[demo] ", Some(tx));
    let mut cadre_village = String::new();
    loop {
        let left = DEMO_PATIENCE.saturating_sub(started.elapsed());
        match rx.recv_timeout(left.min(Duration::from_secs(1))) {
            Ok(line) => {
                // "  cadre      村干部        620422109204 甜水井村民委员会"
                if line.split_whitespace().next() == Some("cadre") {
                    cadre_village =
                        line.split_whitespace().find(|w| w.len() == 12 && w.bytes().all(|b| b.is_ascii_digit())).unwrap_or("").to_string();
                }
                if line.contains("工作台：http://") {
                    break;
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if let Ok(Some(s)) = demo.child.try_wait() {
                    panic!("baozhang demo exited ({s}) before serving:\n{}", demo.log_tail());
                }
                assert!(
                    started.elapsed() < DEMO_PATIENCE,
                    "baozhang demo did not start serving within {DEMO_PATIENCE:?}:\n{}",
                    demo.log_tail()
                );
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let s = demo.stop();
                panic!("baozhang demo closed its output before serving ({s:?}):\n{}", demo.log_tail());
            }
        }
    }
    assert!(!cadre_village.is_empty(), "the demo's account list names no village for the cadre");
    let t = Instant::now();
    while !healthy(port) {
        assert!(t.elapsed() < Duration::from_secs(60), "the workbench did not answer /healthz within 60 s:\n{}", demo.log_tail());
        if let Ok(Some(s)) = demo.child.try_wait() {
            panic!("the workbench exited ({s}):\n{}", demo.log_tail());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let prepared = started.elapsed();
    println!("e2e: demo county ready on port {port} in {:.1} s (cadre's village {cadre_village})", prepared.as_secs_f64());

    // The browser test.
    let mut node = Command::new("node")
        .arg("workbench.mjs")
        .current_dir(&e2e)
        .env("BASE_URL", format!("http://127.0.0.1:{port}"))
        .env("CADRE_VILLAGE", &cadre_village)
        .env("SCREENSHOT_DIR", &shots)
        .env("CHROMIUM", chromium())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start node e2e/workbench.mjs");
    let o = forward_lines(node.stdout.take().expect("node's stdout"), "[browser] ", None);
    let e = forward_lines(node.stderr.take().expect("node's stderr"), "[browser] ", None);
    let t = Instant::now();
    let status = loop {
        if let Some(s) = node.try_wait().expect("wait for node") {
            break Some(s);
        }
        if t.elapsed() > BROWSER_PATIENCE {
            let _ = node.kill();
            let _ = node.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let _ = (o.join(), e.join());
    let browsed = t.elapsed();
    let server_exit = demo.stop();
    println!(
        "e2e: demo {:.1} s, browser {:.1} s, total {:.1} s; screenshots in {}",
        prepared.as_secs_f64(),
        browsed.as_secs_f64(),
        started.elapsed().as_secs_f64(),
        shots.display()
    );
    let status = status.unwrap_or_else(|| panic!("the browser test did not finish within {BROWSER_PATIENCE:?}:\n{}", demo.log_tail()));
    assert!(
        status.success(),
        "the browser test failed ({status}); its output is above, screenshots in {}.\nServer log:\n{}",
        shots.display(),
        demo.log_tail()
    );
    assert!(
        server_exit.is_some_and(|s| s.success()),
        "the workbench did not stop cleanly on SIGTERM ({server_exit:?}):\n{}",
        demo.log_tail()
    );
}
