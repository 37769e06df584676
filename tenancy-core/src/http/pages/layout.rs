use maud::{html, Markup, PreEscaped, DOCTYPE};

/// The pages' style sheet: system fonts, text at least 16 px, contrast above 7:1
/// for text, visible focus rings, and tables that scroll sideways on a phone.
pub const STYLE: &str = r#"
:root { color-scheme: light; --ink: #111; --muted: #444; --line: #c8c8c8; --accent: #0b4f9c; --bad: #9b1c1c; --good: #14532d; --warn: #7a4b00; }
* { box-sizing: border-box; }
body { font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink); background: #fff; margin: 0; }
header.top { display: flex; flex-wrap: wrap; gap: .5rem 1rem; align-items: center; justify-content: space-between; padding: .75rem 1rem; border-bottom: 1px solid var(--line); }
header.top a { color: var(--ink); font-weight: 600; text-decoration: none; }
main { max-width: 72rem; margin: 0 auto; padding: 1rem; }
h1 { font-size: 1.5rem; margin: .5rem 0 1rem; } h2 { font-size: 1.25rem; margin: 1.5rem 0 .5rem; }
a { color: var(--accent); }
:focus-visible { outline: 3px solid var(--accent); outline-offset: 2px; }
label { display: block; font-weight: 600; margin: .5rem 0 .25rem; }
input, select, textarea, button { font: inherit; }
input, select, textarea { padding: .45rem .5rem; border: 1px solid #767676; border-radius: 4px; max-width: 100%; }
textarea { width: 100%; min-height: 8rem; font-family: ui-monospace, monospace; }
button { padding: .5rem 1rem; border: 1px solid var(--accent); background: var(--accent); color: #fff; border-radius: 4px; cursor: pointer; }
button.secondary { background: #fff; color: var(--accent); }
button.danger { background: var(--bad); border-color: var(--bad); }
.row { display: flex; flex-wrap: wrap; gap: .5rem 1rem; align-items: flex-end; }
.actions { display: flex; flex-wrap: wrap; gap: .5rem; margin: .75rem 0; }
.actions form { margin: 0; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .4rem .5rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-size: .875rem; text-transform: uppercase; letter-spacing: .03em; color: var(--muted); }
.muted { color: var(--muted); }
.notice { padding: .75rem 1rem; border-left: 4px solid var(--accent); background: #eef4fb; margin: 1rem 0; }
.notice.bad { border-color: var(--bad); background: #fdf0f0; }
.notice.good { border-color: var(--good); background: #eefaf2; }
.badge { display: inline-block; padding: 0 .5rem; border-radius: 1rem; border: 1px solid currentColor; font-size: .875rem; white-space: nowrap; }
.badge.good { color: var(--good); } .badge.bad { color: var(--bad); } .badge.warn { color: var(--warn); }
progress { width: 100%; height: 1.25rem; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(15rem, 1fr)); gap: 1rem; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 1rem; }
.card h3 { margin-top: 0; }
.price { font-size: 1.5rem; font-weight: 700; }
summary { cursor: pointer; font-weight: 600; font-size: 1.1rem; margin: 1rem 0 .5rem; }
.sr-only { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
"#;

/// A whole page: the document shell, the style sheet and `content` under an
/// optional top bar. Text given to it is escaped by maud; nothing a user typed can
/// become markup.
pub fn page(title: &str, top: Option<Markup>, content: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="same-origin";
                title { (title) }
                style { (PreEscaped(STYLE)) }
            }
            body {
                @if let Some(top) = top {
                    header.top { (top) }
                }
                main { (content) }
            }
        }
    }
}

/// A notice box: `kind` is `""`, `"good"` or `"bad"` (`role="alert"` for bad news).
pub fn notice(kind: &str, message: &str) -> Markup {
    let role = if kind == "bad" { "alert" } else { "status" };
    html! { div class={ "notice " (kind) } role=(role) { (message) } }
}
