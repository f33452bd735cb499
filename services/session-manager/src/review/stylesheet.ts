/**
 * The review page's one stylesheet, served by the service itself (no CDN: it works offline). Colours meet
 * WCAG 2.2 AA contrast (text 4.5:1, graphics and focus 3:1); layout reflows to 320 px and 200 % zoom.
 *
 * @example
 * app.get('/review/assets/review.css', (c) => c.body(REVIEW_CSS, 200, { 'content-type': 'text/css' }))
 */
export const REVIEW_CSS = `
:root { --ink: #1a1a1a; --muted: #4a4a4a; --paper: #ffffff; --accent: #0b5394; --line: #767676;
  --error: #a4000f; --band: #f2f4f7; --focus: #b35900; font-family: system-ui, sans-serif; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--ink); background: var(--paper); line-height: 1.5; font-size: 1rem; }
a { color: var(--accent); }
a:hover { text-decoration-thickness: 2px; }
:focus-visible { outline: 3px solid var(--focus); outline-offset: 2px; }
.skip { position: absolute; left: 0.5rem; top: -3rem; background: var(--paper); padding: 0.5rem 1rem;
  border: 2px solid var(--accent); z-index: 10; }
.skip:focus { top: 0.5rem; }
.banner { display: flex; flex-wrap: wrap; gap: 0.5rem 1.5rem; align-items: center; justify-content: space-between;
  padding: 0.5rem 1rem; background: var(--band); border-bottom: 1px solid var(--line); }
.brand { font-weight: 700; margin: 0; }
nav { min-width: 0; max-width: 100%; }
nav li, form.inline > * { min-width: 0; max-width: 100%; }
nav ul { list-style: none; margin: 0; padding: 0; display: flex; flex-wrap: wrap; gap: 0.5rem 1rem; align-items: center; }
form.inline { display: flex; flex-wrap: wrap; gap: 0.25rem 0.5rem; align-items: center; margin: 0; }
main { padding: 1rem; max-width: 90rem; }
main:focus { outline: none; }
footer { padding: 1rem; color: var(--muted); border-top: 1px solid var(--line); }
h1 { font-size: 1.6rem; overflow-wrap: anywhere; }
h2 { font-size: 1.25rem; margin-top: 2rem; }
label { font-weight: 600; }
input, select, button { font: inherit; padding: 0.35rem 0.5rem; border: 1px solid var(--line); border-radius: 3px;
  color: var(--ink); background: var(--paper); max-width: 100%; }
button { background: var(--accent); color: #ffffff; border-color: var(--accent); cursor: pointer; }
button:hover { background: #083d6e; }
.stack { display: flex; flex-direction: column; gap: 0.5rem; max-width: 28rem; }
.search { display: flex; flex-wrap: wrap; gap: 0.75rem 1rem; align-items: flex-end; }
.search .help { flex-basis: 100%; margin: 0; }
.field { display: flex; flex-direction: column; gap: 0.25rem; min-width: 12rem; flex: 1 1 12rem; }
.field.actions { flex: 0 0 auto; min-width: 0; }
.help, .note { color: var(--muted); }
.error { color: var(--error); font-weight: 600; }
.mono { font-family: ui-monospace, monospace; overflow-wrap: anywhere; }
.scroll { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; width: 100%; }
caption { text-align: left; font-weight: 600; padding: 0.25rem 0; }
th, td { text-align: left; vertical-align: top; padding: 0.35rem 0.5rem; border-bottom: 1px solid var(--line); }
thead th { background: var(--band); }
tr.worker td:first-child { border-left: 4px solid #5b3a8a; }
tr.lifecycle td:first-child { border-left: 4px solid var(--accent); }
pre { white-space: pre-wrap; overflow-wrap: anywhere; margin: 0.25rem 0; font-size: 0.85rem; max-width: 40rem; }
dl.summary { display: grid; grid-template-columns: max-content 1fr; gap: 0.25rem 1rem; }
dl.summary dt { font-weight: 600; }
dl.summary dd { margin: 0; }
figure.lanes { margin: 1rem 0; }
figure.lanes svg { width: 100%; height: auto; max-height: 24rem; border: 1px solid var(--line); }
.lane-label, .axis-label { font-size: 14px; fill: var(--ink); }
.lane-line { stroke: var(--line); stroke-width: 1; }
.dot-lifecycle { fill: var(--accent); }
.dot-worker { fill: #5b3a8a; }
@media (max-width: 40rem) {
  dl.summary { grid-template-columns: 1fr; }
  .field { min-width: 100%; }
  nav ul { flex-direction: column; align-items: flex-start; }
  #zone { width: 100%; }
}
`
