//! A real browser for tests of server-rendered pages: Debian's headless Chromium,
//! driven through its ChromeDriver over WebDriver (fantoccini).
//!
//! ```ignore
//! let browser = Browser::start("admin_sign_in").await;
//! browser
//!     .step("sign in", async {
//!         browser.goto(&format!("{base}/admin")).await?;
//!         browser.fill("#token", ADMIN_TOKEN).await?;
//!         browser.click("button[type=submit]").await?;
//!         browser.wait_for_text("h1", "Tenants", WAIT).await
//!     })
//!     .await
//!     .unwrap();
//! browser.close().await;
//! ```
//!
//! A step that fails (returns an error, panics or overruns its time) leaves a
//! screenshot at `target/browser-screenshots/<test>-<step>.png`, named in its error.
//! Every wait is bounded. Missing binaries fail the test: run
//! `scripts/ensure-browser.sh`.

use std::fmt;
use std::future::Future;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use fantoccini::error::{CmdError, ErrorStatus};
use fantoccini::{Client, ClientBuilder, Locator};
use futures::FutureExt;
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{json, Map, Value};

/// Debian's Chromium, from the package `chromium`.
pub const CHROMIUM: &str = "/usr/bin/chromium";
/// Debian's ChromeDriver, from the package `chromium-driver`.
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// How long ChromeDriver has to answer `/status` as ready.
const DRIVER_READY: Duration = Duration::from_secs(20);
/// How long Chromium has to start and open the session.
const SESSION_START: Duration = Duration::from_secs(60);
/// How long `fill`, `click` and `text` wait for their element to appear.
pub const ELEMENT_WAIT: Duration = Duration::from_secs(10);
/// How long one step may run before it fails, unless changed with
/// [`Browser::set_step_timeout`].
pub const STEP_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a page load, or a script, may take in the browser.
const PAGE_LOAD: Duration = Duration::from_secs(30);
/// How often bounded waits look again.
const POLL: Duration = Duration::from_millis(50);
/// How long the screenshot of a failed step and the closing of the session may take.
const SHUTDOWN: Duration = Duration::from_secs(10);

const CHROMIUM_ARGS: &[&str] = &[
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,900",
];

/// What a browser helper or a step failed with.
#[derive(Debug)]
pub struct BrowserError {
    message: String,
    screenshot: Option<PathBuf>,
}

impl BrowserError {
    /// An error of a step's own, e.g. a check that did not hold.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            screenshot: None,
        }
    }

    /// The screenshot taken when the step failed, if one could be taken.
    pub fn screenshot(&self) -> Option<&Path> {
        self.screenshot.as_deref()
    }
}

impl fmt::Display for BrowserError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for BrowserError {}

impl From<CmdError> for BrowserError {
    fn from(error: CmdError) -> Self {
        Self::new(error.to_string())
    }
}

impl From<String> for BrowserError {
    fn from(message: String) -> Self {
        Self::new(message)
    }
}

impl From<&str> for BrowserError {
    fn from(message: &str) -> Self {
        Self::new(message)
    }
}

/// `what` failed with `error`.
fn failed(what: impl fmt::Display, error: CmdError) -> BrowserError {
    BrowserError::new(format!("{what}: {error}"))
}

/// A headless Chromium session for one test, with its own ChromeDriver and profile.
///
/// [`Browser::close`] ends the session and ChromeDriver; dropping the browser
/// without closing it (a failed test) does the same without waiting on the runtime.
pub struct Browser {
    client: Client,
    test: String,
    step_timeout: Duration,
    // Dropped after `client`: ends the session if it is still open, then ChromeDriver.
    driver: Driver,
}

impl fmt::Debug for Browser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Browser")
            .field("test", &self.test)
            .field("driver", &self.driver)
            .finish_non_exhaustive()
    }
}

impl Browser {
    /// Starts ChromeDriver on a free port and opens a headless Chromium session for
    /// the test `test` (which names its failure screenshots). Panics when Chromium
    /// or ChromeDriver is missing or does not start in time.
    pub async fn start(test: &str) -> Self {
        for binary in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                Path::new(binary).exists(),
                "{binary} is missing: the browser tests need Debian's chromium and \
                 chromium-driver; run scripts/ensure-browser.sh"
            );
        }
        let mut driver = Driver::spawn(test).await;
        let webdriver = format!("http://127.0.0.1:{}", driver.port);
        let mut builder = ClientBuilder::new(HttpConnector::new());
        builder.capabilities(capabilities(&driver.profile()));
        let client = match tokio::time::timeout(SESSION_START, builder.connect(&webdriver)).await {
            Ok(Ok(client)) => client,
            Ok(Err(error)) => panic!(
                "ChromeDriver could not start Chromium: {error}\n{}",
                driver.log_tail()
            ),
            Err(_) => panic!(
                "Chromium did not start within {SESSION_START:?}\n{}",
                driver.log_tail()
            ),
        };
        driver.session = client
            .session_id()
            .await
            .unwrap_or_else(|error| panic!("no WebDriver session id: {error}"));
        Self {
            client,
            test: test.to_owned(),
            step_timeout: STEP_TIMEOUT,
            driver,
        }
    }

    /// The fantoccini client, for what the helpers below do not cover.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// How long each later step may run before it fails (default [`STEP_TIMEOUT`]).
    pub fn set_step_timeout(&mut self, timeout: Duration) {
        self.step_timeout = timeout;
    }

    /// Where the screenshot of a failed step `step` goes:
    /// `target/browser-screenshots/<test>-<step>.png`.
    pub fn screenshot_path(&self, step: &str) -> PathBuf {
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
                manifest.parent().unwrap_or(manifest).join("target")
            });
        target.join("browser-screenshots").join(format!(
            "{}-{}.png",
            file_name(&self.test),
            file_name(step)
        ))
    }

    /// Runs `body` as the step `name`. When it returns an error, panics or runs
    /// longer than the step timeout, a screenshot of the page is written to
    /// [`Browser::screenshot_path`] and the error names it (a panic is resumed after
    /// the screenshot).
    ///
    /// The error type is fixed so that `?` in an `async` block needs no annotation:
    /// fantoccini's errors, strings and [`BrowserError::new`] convert into it.
    pub async fn step<T, F>(&self, name: &str, body: F) -> Result<T, BrowserError>
    where
        F: Future<Output = Result<T, BrowserError>>,
    {
        let outcome =
            tokio::time::timeout(self.step_timeout, AssertUnwindSafe(body).catch_unwind()).await;
        let message = match outcome {
            Ok(Ok(Ok(value))) => return Ok(value),
            Ok(Ok(Err(error))) => error.message,
            Ok(Err(panic)) => {
                let (shown, _) = self.screenshot(name).await;
                eprintln!(
                    "step `{name}` of `{}` panicked; screenshot: {shown}",
                    self.test
                );
                std::panic::resume_unwind(panic);
            }
            Err(_) => format!("did not finish within {:?}", self.step_timeout),
        };
        let (shown, screenshot) = self.screenshot(name).await;
        Err(BrowserError {
            message: format!(
                "step `{name}` of `{}` failed: {message}; screenshot: {shown}",
                self.test
            ),
            screenshot,
        })
    }

    /// Writes a screenshot for the step `step`; returns what to show of it and its
    /// path when it was written.
    async fn screenshot(&self, step: &str) -> (String, Option<PathBuf>) {
        let path = self.screenshot_path(step);
        let png = match tokio::time::timeout(SHUTDOWN, self.client.screenshot()).await {
            Ok(Ok(png)) => png,
            Ok(Err(error)) => return (format!("none ({error})"), None),
            Err(_) => return (format!("none (not taken within {SHUTDOWN:?})"), None),
        };
        let written = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(&path, png));
        match written {
            Ok(()) => (path.display().to_string(), Some(path)),
            Err(error) => (format!("none ({}: {error})", path.display()), None),
        }
    }

    /// Navigates to `url` and waits for the page to load.
    pub async fn goto(&self, url: &str) -> Result<(), BrowserError> {
        self.client
            .goto(url)
            .await
            .map_err(|error| failed(format_args!("go to {url}"), error))
    }

    /// The page's URL.
    pub async fn current_url(&self) -> Result<url::Url, BrowserError> {
        self.client
            .current_url()
            .await
            .map_err(|error| failed("read the current URL", error))
    }

    /// The first element matching `css`, waiting up to [`ELEMENT_WAIT`] for it.
    pub async fn find(&self, css: &str) -> Result<fantoccini::elements::Element, BrowserError> {
        self.client
            .wait()
            .at_most(ELEMENT_WAIT)
            .every(POLL)
            .for_element(Locator::Css(css))
            .await
            .map_err(|error| match error {
                CmdError::WaitTimeout => {
                    BrowserError::new(format!("no element matches `{css}` after {ELEMENT_WAIT:?}"))
                }
                error => failed(format_args!("find `{css}`"), error),
            })
    }

    /// Clears the field matching `css` and types `text` into it.
    pub async fn fill(&self, css: &str, text: &str) -> Result<(), BrowserError> {
        self.on_element(css, "type into", |field| async move {
            field.clear().await?;
            field.send_keys(text).await
        })
        .await
    }

    /// Clicks the element matching `css`.
    pub async fn click(&self, css: &str) -> Result<(), BrowserError> {
        self.on_element(css, "click", |element| async move { element.click().await })
            .await
    }

    /// The rendered text of the element matching `css`.
    pub async fn text(&self, css: &str) -> Result<String, BrowserError> {
        self.on_element(css, "read the text of", |element| async move {
            element.text().await
        })
        .await
    }

    /// Finds the element matching `css` and does `action` with it. An element
    /// replaced meanwhile (the page navigated or re-rendered) is found again, up to
    /// [`ELEMENT_WAIT`]; `what` names the action in the error.
    async fn on_element<T, A, F>(&self, css: &str, what: &str, action: A) -> Result<T, BrowserError>
    where
        A: Fn(fantoccini::elements::Element) -> F,
        F: Future<Output = Result<T, CmdError>>,
    {
        let deadline = Instant::now() + ELEMENT_WAIT;
        loop {
            match action(self.find(css).await?).await {
                Ok(done) => return Ok(done),
                Err(error) if page_changed(&error) && Instant::now() < deadline => {
                    tokio::time::sleep(POLL).await;
                }
                Err(error) => return Err(failed(format_args!("{what} `{css}`"), error)),
            }
        }
    }

    /// Waits up to `timeout` until the first element matching `css` has a text that
    /// contains `needle`; returns its whole text.
    pub async fn wait_for_text(
        &self,
        css: &str,
        needle: &str,
        timeout: Duration,
    ) -> Result<String, BrowserError> {
        let deadline = Instant::now() + timeout;
        let mut seen: Option<String> = None;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let found = self
                .client
                .wait()
                .at_most(left)
                .every(POLL)
                .for_element(Locator::Css(css))
                .await;
            match found {
                Ok(element) => match element.text().await {
                    Ok(text) if text.contains(needle) => return Ok(text),
                    Ok(text) => seen = Some(text),
                    Err(error) if page_changed(&error) => {}
                    Err(error) => {
                        return Err(failed(format_args!("read the text of `{css}`"), error))
                    }
                },
                Err(CmdError::WaitTimeout) => {}
                Err(error) => return Err(failed(format_args!("find `{css}`"), error)),
            }
            if Instant::now() >= deadline {
                let seen = match seen {
                    Some(text) => format!("its text was {text:?}"),
                    None => "no element matched".to_owned(),
                };
                return Err(BrowserError::new(format!(
                    "`{css}` did not show {needle:?} within {timeout:?}: {seen}"
                )));
            }
            tokio::time::sleep(POLL.min(deadline.saturating_duration_since(Instant::now()))).await;
        }
    }

    /// Ends the browser session (Chromium exits), then ChromeDriver, and removes
    /// the profile.
    pub async fn close(mut self) {
        let session = self.driver.session.take();
        let client = self.client.clone();
        match tokio::time::timeout(SHUTDOWN, client.close()).await {
            Ok(Ok(())) => {}
            // The session could not be ended through fantoccini: the driver's drop
            // asks ChromeDriver directly.
            _ => self.driver.session = session,
        }
        // Dropping `self` stops ChromeDriver and removes the profile.
    }
}

/// Whether `error` says the element left the document between finding and using it:
/// WebDriver's stale element reference, or the inspector error Chromium answers
/// instead while a navigation replaces the document.
fn page_changed(error: &CmdError) -> bool {
    match error {
        CmdError::Standard(error) => {
            error.error == ErrorStatus::StaleElementReference
                || (error.error == ErrorStatus::UnknownError
                    && (error.message.contains("does not belong to the document")
                        || error.message.contains("No node with given id")))
        }
        _ => false,
    }
}

/// The WebDriver capabilities of a headless Debian Chromium with its profile at
/// `profile`.
fn capabilities(profile: &Path) -> Map<String, Value> {
    let mut args: Vec<String> = CHROMIUM_ARGS.iter().map(|&arg| arg.to_owned()).collect();
    args.push(format!("--user-data-dir={}", profile.display()));
    let millis = |duration: Duration| u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
    let capabilities = json!({
        "browserName": "chrome",
        "pageLoadStrategy": "normal",
        "timeouts": {
            "implicit": 0,
            "pageLoad": millis(PAGE_LOAD),
            "script": millis(PAGE_LOAD),
        },
        "goog:chromeOptions": {
            "binary": CHROMIUM,
            "args": args,
        },
    });
    match capabilities {
        Value::Object(map) => map,
        _ => unreachable!("the capabilities are a JSON object"),
    }
}

/// `name` with everything but ASCII letters, digits, `-` and `_` replaced by `-`.
fn file_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// A ChromeDriver process on a port of its own, with a fresh temporary directory
/// holding Chromium's profile and ChromeDriver's log.
struct Driver {
    child: Child,
    port: u16,
    dir: PathBuf,
    /// The open WebDriver session, ended on drop if still open.
    session: Option<String>,
}

impl fmt::Debug for Driver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Driver")
            .field("pid", &self.child.id())
            .field("port", &self.port)
            .field("dir", &self.dir)
            .finish()
    }
}

impl Driver {
    /// Starts ChromeDriver and waits (bounded) until its `/status` says it is ready.
    async fn spawn(test: &str) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "tenancy-browser-{}-{}-{}",
            file_name(test),
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        // A directory left behind by an earlier process with the same pid is not fresh.
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("profile"))
            .unwrap_or_else(|error| panic!("cannot create {}: {error}", dir.display()));
        let log = std::fs::File::create(dir.join("chromedriver.log"))
            .unwrap_or_else(|error| panic!("cannot create ChromeDriver's log: {error}"));
        let log_err = log
            .try_clone()
            .unwrap_or_else(|error| panic!("cannot share ChromeDriver's log: {error}"));
        let port = free_port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {CHROMEDRIVER}: {error}"));
        let mut driver = Self {
            child,
            port,
            dir,
            session: None,
        };
        driver.wait_ready().await;
        driver
    }

    /// Polls `/status` until ChromeDriver is ready; panics after [`DRIVER_READY`].
    async fn wait_ready(&mut self) {
        let status = format!("http://127.0.0.1:{}/status", self.port);
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .unwrap_or_else(|error| panic!("no HTTP client: {error}"));
        let deadline = Instant::now() + DRIVER_READY;
        loop {
            if let Ok(Some(exit)) = self.child.try_wait() {
                panic!(
                    "ChromeDriver exited before it was ready ({exit})\n{}",
                    self.log_tail()
                );
            }
            if let Ok(response) = http.get(&status).send().await {
                if let Ok(body) = response.json::<Value>().await {
                    if body["value"]["ready"] == Value::Bool(true) {
                        return;
                    }
                }
            }
            assert!(
                Instant::now() < deadline,
                "ChromeDriver was not ready within {DRIVER_READY:?} on port {}\n{}",
                self.port,
                self.log_tail()
            );
            tokio::time::sleep(POLL).await;
        }
    }

    fn profile(&self) -> PathBuf {
        self.dir.join("profile")
    }

    /// The end of ChromeDriver's log, for failure messages.
    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("chromedriver.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(20)..].join("\n");
        format!("ChromeDriver's log ends:\n{tail}")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // Without the runtime (this may run while a panic unwinds): a plain HTTP
        // request asks ChromeDriver to end the session, which makes Chromium exit.
        if let Some(session) = self.session.take() {
            let _ = delete_session(self.port, &session);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Chromium outlives a killed ChromeDriver: if its session was not ended
        // (it never fully started, or ChromeDriver did not answer), its processes
        // are still running with this driver's profile.
        kill_processes_using(&self.profile());
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Kills the processes started with `--user-data-dir=<profile>`: the main process
/// of one driver's Chromium (its helpers exit with it), whatever became of its
/// ChromeDriver.
fn kill_processes_using(profile: &Path) {
    let needle = format!("--user-data-dir={}", profile.display());
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        if cmdline
            .split(|&byte| byte == 0)
            .any(|arg| arg == needle.as_bytes())
        {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

/// `DELETE /session/{session}` to ChromeDriver, blocking, bounded by socket timeouts.
fn delete_session(port: u16, session: &str) -> std::io::Result<()> {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(2))?;
    stream.set_write_timeout(Some(SHUTDOWN))?;
    stream.set_read_timeout(Some(SHUTDOWN))?;
    write!(
        stream,
        "DELETE /session/{session} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\
         Connection: close\r\nContent-Length: 0\r\n\r\n"
    )?;
    // ChromeDriver answers once Chromium has quit, but keeps the connection open
    // despite `Connection: close`: read the head and the body it announces.
    let mut response = Vec::new();
    let mut chunk = [0_u8; 1024];
    loop {
        let read = stream.read(&mut chunk)?;
        if read == 0 {
            return Ok(());
        }
        response.extend_from_slice(&chunk[..read]);
        if let Some(head_end) = find(&response, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&response[..head_end]).to_ascii_lowercase();
            let body_length = head
                .lines()
                .find_map(|line| line.strip_prefix("content-length:"))
                .and_then(|length| length.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if response.len() >= head_end + 4 + body_length {
                return Ok(());
            }
        }
    }
}

/// Where `needle` first occurs in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// A TCP port that is free on loopback now (the OS picks it).
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .unwrap_or_else(|error| panic!("no free port on loopback: {error}"))
}
