//! The browser harness itself: headless Chromium fills and submits a form served by a
//! tiny axum app, and a failing step leaves a screenshot that its error names.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::Form;
use axum::response::Html;
use axum::routing::get;
use axum::Router;
use support::browser::Browser;

const WAIT: Duration = Duration::from_secs(10);

const FORM_PAGE: &str = r#"<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Echo</title></head>
<body>
  <h1>Echo</h1>
  <form method="post" action="/">
    <label for="message">Message</label>
    <input id="message" name="message" type="text">
    <button type="submit">Send</button>
  </form>
</body>
</html>"#;

/// A page that replaces its heading and its button with fresh copies every 100 ms,
/// as a page does while it navigates or re-renders; the button counts its clicks.
const RERENDERING_PAGE: &str = r#"<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Busy</title></head>
<body>
  <h1>Busy</h1>
  <button id="count" type="button">Count</button>
  <p id="clicks">0</p>
  <script>
    let clicks = 0;
    function render() {
      const heading = document.createElement("h1");
      heading.textContent = "Busy";
      document.querySelector("h1").replaceWith(heading);
      const button = document.createElement("button");
      button.id = "count";
      button.type = "button";
      button.textContent = "Count";
      button.addEventListener("click", () => {
        clicks += 1;
        document.getElementById("clicks").textContent = String(clicks);
      });
      document.getElementById("count").replaceWith(button);
    }
    setInterval(render, 100);
  </script>
</body>
</html>"#;

fn escape_html(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

async fn echo(Form(fields): Form<HashMap<String, String>>) -> Html<String> {
    let message = fields.get("message").map_or("", String::as_str);
    Html(format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Echoed</title></head>\
         <body><h1>Echoed</h1><p id=\"echo\">{}</p></body></html>",
        escape_html(message)
    ))
}

/// Serves the echo app on an ephemeral loopback port; returns its base URL.
async fn serve_echo() -> String {
    let app = Router::new()
        .route("/", get(|| async { Html(FORM_PAGE) }).post(echo))
        .route("/busy", get(|| async { Html(RERENDERING_PAGE) }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{address}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fills_and_submits_a_form_and_reads_the_escaped_echo() {
    let base = serve_echo().await;
    let browser = Browser::start("fills_and_submits_a_form").await;
    let message = r#"<b>Tom & "Jerry"</b> it's"#;

    browser
        .step("open the form", async {
            browser.goto(&format!("{base}/")).await?;
            browser
                .wait_for_text("label[for=message]", "Message", WAIT)
                .await
        })
        .await
        .unwrap();

    let echoed = browser
        .step("submit", async {
            browser.fill("#message", message).await?;
            browser.click("button[type=submit]").await?;
            browser.wait_for_text("h1", "Echoed", WAIT).await?;
            browser.text("#echo").await
        })
        .await
        .unwrap();
    // Shown as typed: the markup was escaped, not rendered.
    assert_eq!(echoed, message);
    let injected = browser
        .client()
        .find_all(fantoccini::Locator::Css("#echo b"))
        .await
        .unwrap();
    assert!(injected.is_empty(), "the echoed markup was rendered");
    assert_eq!(browser.current_url().await.unwrap().path(), "/");

    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_and_clicks_elements_that_are_replaced_while_used() {
    let base = serve_echo().await;
    let browser = Browser::start("elements_replaced_while_used").await;
    let clicks: u32 = 25;

    let counted = browser
        .step("read and click a re-rendering page", async {
            browser.goto(&format!("{base}/busy")).await?;
            for _ in 0..clicks {
                assert_eq!(browser.text("h1").await?, "Busy");
                browser.click("#count").await?;
            }
            browser.text("#clicks").await
        })
        .await
        .unwrap();
    // Every read and click went through. A click whose button was replaced between
    // its press and its release is lost by the page itself, but none counts twice:
    // a click found stale is retried only before it was made.
    let counted: u32 = counted.parse().unwrap();
    assert!(
        (1..=clicks).contains(&counted),
        "{counted} clicks counted of {clicks}"
    );

    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_step_leaves_a_screenshot_named_in_its_error() {
    let base = serve_echo().await;
    let browser = Browser::start("browser_harness_failing").await;
    let expected = browser.screenshot_path("look for a missing heading");
    let _ = std::fs::remove_file(&expected);

    let error = browser
        .step("look for a missing heading", async {
            browser.goto(&format!("{base}/")).await?;
            browser
                .wait_for_text("h1", "Never shown", Duration::from_millis(500))
                .await
        })
        .await
        .unwrap_err();

    let message = error.to_string();
    assert!(
        message.contains("did not show \"Never shown\""),
        "the error says what was awaited: {message}"
    );
    assert!(
        message.contains("its text was \"Echo\""),
        "the error says what was there: {message}"
    );
    assert!(
        message.contains(&expected.display().to_string()),
        "the error names the screenshot: {message}"
    );
    assert_eq!(error.screenshot(), Some(expected.as_path()));
    assert!(
        expected.ends_with("browser_harness_failing-look-for-a-missing-heading.png"),
        "{}",
        expected.display()
    );
    let png = std::fs::read(&expected).unwrap();
    assert!(png.len() > 8, "an empty screenshot");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");

    browser.close().await;
}
