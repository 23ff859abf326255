// The dashboard's HTML shell and stylesheet. The page's content is drawn by ui/main.ts (bundled to
// /app.js); the shell already carries the language and direction so that Arabic renders
// right-to-left from the first paint. The layout uses logical CSS properties (inline-start/end),
// so it mirrors in RTL without a second stylesheet.

import { dirOf, t, type Lang } from "./i18n.ts";

const CSS = `
:root{--fg:#1b1f23;--muted:#57606a;--line:#d0d7de;--bg:#fff;--head:#f6f8fa;--accent:#0b5cad;
--ready:#1a7f37;--charging:#0969da;--faulty:#cf222e;--silent:#8250df;--warning:#9a6700;--critical:#cf222e;--info:#57606a}
*{box-sizing:border-box}
html{font:14px/1.45 system-ui,"Noto Sans Arabic","Noto Sans","DejaVu Sans",sans-serif;color:var(--fg);background:var(--bg)}
body{margin:0}
header{display:flex;align-items:center;gap:1rem;padding:.6rem 1rem;border-block-end:1px solid var(--line);background:var(--head)}
header h1{font-size:1.2rem;margin:0;flex:1}
#live{font-size:.85rem;color:var(--muted)}#live.on::before{content:"● ";color:var(--ready)}#live.off::before{content:"● ";color:var(--critical)}
#lang button{font:inherit;padding:.15rem .6rem;border:1px solid var(--line);background:#fff;cursor:pointer}
#lang button[aria-pressed=true]{background:var(--accent);color:#fff;border-color:var(--accent)}
nav{display:flex;gap:.25rem;padding:0 1rem;border-block-end:1px solid var(--line)}
nav button{font:inherit;border:0;background:none;padding:.55rem .8rem;cursor:pointer;border-block-end:3px solid transparent;color:var(--muted)}
nav button[aria-selected=true]{color:var(--fg);border-block-end-color:var(--accent);font-weight:600}
nav .badge{display:inline-block;min-width:1.4em;padding:0 .35em;margin-inline-start:.35em;border-radius:1em;background:var(--critical);color:#fff;font-size:.8em;text-align:center}
main{padding:1rem}
section[hidden]{display:none}
h2{font-size:1.1rem;margin:0 0 .6rem}
.filters{display:flex;flex-wrap:wrap;gap:.75rem;align-items:end;margin-block-end:.6rem}
.filters label{display:flex;flex-direction:column;font-size:.8rem;color:var(--muted)}
.filters select,.filters input{font:inherit;padding:.2rem .3rem;min-width:10rem}
.bar{display:flex;gap:1rem;align-items:center;flex-wrap:wrap;margin-block:.4rem;color:var(--muted)}
.bar button,.bar a{font:inherit}
.counts span{margin-inline-end:.8rem}
table{border-collapse:collapse;width:100%}
th,td{padding:.25rem .5rem;border-block-end:1px solid var(--line);text-align:start;white-space:nowrap}
th{background:var(--head);position:sticky;top:0;font-weight:600}
td.num,th.num{text-align:end;font-variant-numeric:tabular-nums}
tbody tr:hover{background:#f3f8ff}
tr.sub td{font-weight:600;background:#fafbfc}tr.total td{font-weight:700;border-block-start:2px solid var(--fg)}
.st{display:inline-block;padding:0 .45em;border-radius:.3em;color:#fff;font-size:.85em}
.st-ready{background:var(--ready)}.st-charging{background:var(--charging)}.st-faulty{background:var(--faulty)}.st-silent{background:var(--silent)}
.sev-critical{color:var(--critical);font-weight:600}.sev-warning{color:var(--warning);font-weight:600}.sev-info{color:var(--info)}
.link{color:var(--accent);cursor:pointer;text-decoration:underline;background:none;border:0;font:inherit;padding:0}
.flash{animation:flash 1.2s ease-out}@keyframes flash{from{background:#fff3b0}to{background:transparent}}
#detail{border:1px solid var(--line);padding:.8rem;margin-block-end:1rem;background:#fcfcfd}
#detail dl{display:grid;grid-template-columns:max-content 1fr max-content 1fr;gap:.2rem 1rem;margin:0 0 .6rem}
#detail dt{color:var(--muted)}#detail dd{margin:0}
.plot svg{max-width:100%;height:auto;border:1px solid var(--line);background:#fff}
.note{color:var(--muted);font-style:italic}
td.warn{color:var(--warning);font-weight:600}
.filters label.check{flex-direction:row;align-items:center;gap:.3rem;color:var(--fg);align-self:end;padding-block-end:.3rem}
.filters [hidden],#station[hidden]{display:none}
.filters input[type=checkbox]{min-width:0}
.cs{font-size:.9em}
tr.flagged td{background:#fff5f5}
.flag{display:inline-block;padding:0 .4em;margin-inline-end:.25em;border-radius:.3em;background:#ffebe9;color:var(--critical);font-size:.85em;white-space:nowrap}
.rs{display:inline-block;padding:0 .45em;border-radius:.3em;color:#fff;font-size:.85em}
.rs-match{background:var(--ready)}.rs-mismatch{background:var(--critical)}.rs-missing-result,.rs-missing-turnout{background:var(--warning)}.rs-open{background:var(--muted)}
table.contest{width:auto;min-width:18rem;display:inline-table;margin-inline-end:1rem;margin-block-end:.8rem;vertical-align:top}
table.contest caption{text-align:start;font-weight:600;padding:.2rem 0}
.cs{white-space:normal}
#station{border:1px solid var(--line);padding:.8rem;margin-block-end:1rem;background:#fcfcfd}
#station dl{display:grid;grid-template-columns:max-content 1fr max-content 1fr;gap:.2rem 1rem;margin:0 0 .6rem}
#station dt{color:var(--muted)}#station dd{margin:0}
#turnout-grid{margin-block-end:1rem}
.empty{color:var(--muted);padding:.6rem 0}
`;

export function pageHtml(lang: Lang): string {
  return `<!doctype html>
<html lang="${lang}" dir="${dirOf(lang)}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${t(lang, "page.title")}</title>
<style>${CSS}</style>
</head>
<body>
<div id="app" data-lang="${lang}"></div>
<script src="/app.js"></script>
</body>
</html>
`;
}
