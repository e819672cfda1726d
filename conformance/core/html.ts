// The HTML report of a certification run: one self-contained page (no script, no external
// resource) with the summary, the requirement matrix, and every failing or erring test with
// what was expected and observed and a message sequence chart of its traffic, drawn as SVG
// from the test's pcap (each LNet message an arrow between the endpoints it went between).
import { readFileSync } from 'node:fs'
import { decodeTrace } from '../../src/trace/index.js'
import type { RunRecord } from './reports.js'

export interface ChartMessage { from: string; to: string; label: string; reply: boolean; frame: number }

const esc = (s: string): string => s.replace(/[<>&"']/g, c => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&#39;' })[c]!)

/** The LNet messages of a pcap, in order, as chart arrows (requests, replies with their status, bulk). */
export function chartMessages(pcap: Uint8Array): ChartMessage[] {
  const out: ChartMessage[] = []
  for (const e of decodeTrace(pcap)) {
    if (e.unit !== 'lnet') continue
    const m = e.message
    const what = m ? `${m.opcode ?? `opc ${m.opc}`} ${m.kind}${m.kind === 'reply' || m.kind === 'error' ? ` ${String(m.body.pb_status)}` : ''}`
      : e.error ? `undecodable (${e.error.code})` : `${e.lnetType ?? 'LNet'}${e.bulkBytes ? ` ${e.bulkBytes} bytes` : ''}`
    out.push({ from: e.src, to: e.dst, label: what, reply: m?.kind === 'reply' || m?.kind === 'error', frame: e.endFrame ?? e.frame })
  }
  return out
}

/**
 * An SVG sequence chart: a lifeline per endpoint (the target's on the left), an arrow per
 * message labelled with its frame number; the arrows of `marked` frames (a failure's) in red.
 */
export function sequenceSvg(msgs: ChartMessage[], limit = 200, marked: number[] = []): string {
  // A failure's frames may lie past the limit: the chart then starts a little before them.
  const at = msgs.findIndex(m => marked.includes(m.frame))
  const first = at < limit - 5 ? 0 : Math.max(0, Math.min(msgs.length - limit, at - 5))
  const shown = msgs.slice(first, first + limit)
  const ends: string[] = []
  for (const m of shown) for (const e of [m.to, m.from]) if (!ends.includes(e)) ends.push(e)
  // The side that first receives is the target: it goes first.
  const x = (e: string): number => 90 + ends.indexOf(e) * 220
  const width = 180 + Math.max(1, ends.length - 1) * 220
  const height = 60 + shown.length * 26 + 20
  const parts = [`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" role="img" aria-label="message sequence chart">`,
    '<defs><marker id="a" markerWidth="8" markerHeight="8" refX="8" refY="4" orient="auto"><path d="M0,0 L8,4 L0,8 z"/></marker></defs>']
  for (const e of ends) {
    parts.push(`<text x="${x(e)}" y="20" text-anchor="middle" font-size="11">${esc(e)}</text>`, `<line x1="${x(e)}" y1="28" x2="${x(e)}" y2="${height - 10}" stroke="#999" stroke-dasharray="4 3"/>`)
  }
  shown.forEach((m, i) => {
    const y = 50 + i * 26
    const [x1, x2] = [x(m.from), x(m.to)]
    const hot = marked.includes(m.frame)
    parts.push(`<line x1="${x1}" y1="${y}" x2="${x2}" y2="${y}" stroke="${hot ? '#c00' : m.reply ? '#2a6' : '#236'}" ${hot ? 'stroke-width="2" class="marked" ' : ''}${m.reply ? 'stroke-dasharray="6 3" ' : ''}marker-end="url(#a)"/>`,
      `<text x="${(x1 + x2) / 2}" y="${y - 4}" text-anchor="middle" font-size="11"${hot ? ' fill="#c00" font-weight="bold"' : ''}>${m.frame}: ${esc(m.label)}</text>`)
  })
  if (msgs.length > shown.length) parts.push(`<text x="10" y="${height - 4}" font-size="11">… the pcap holds ${first} messages before these and ${msgs.length - first - shown.length} after</text>`)
  parts.push('</svg>')
  return parts.join('\n')
}

const CSS = `body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top}.pass{background:#dfd}.fail{background:#fdd}
.error,.blocked{background:#fed}.unsupported,.uncovered,.not.run{background:#eee}code{font-size:12px}section{margin:2em 0}`

/** The whole page; `pcapPath(id)` gives a test's pcap file (read for the chart) and its link, when it has one. */
export function htmlReport(run: RunRecord, pcapPath: (id: string) => { file: string; href: string } | undefined): string {
  const count = (k: string): number => run.results.filter(r => r.verdict.kind === k).length
  const out: string[] = ['<!doctype html>', '<html lang="en"><head><meta charset="utf-8">', '<title>lustre-conformance report</title>', `<style>${CSS}</style></head><body>`,
    '<h1>lustre-conformance certification</h1>',
    `<p>Target: MDS <code>${esc(run.target.mds)}</code>, OSS ${run.target.oss.map(o => `<code>${esc(o)}</code>`).join(', ') || '(none)'}, filesystem <code>${esc(run.target.fsname)}</code>. ` +
      `Seed <code>${run.seed}</code> (<code>--seed ${run.seed}</code> reproduces the run), started ${esc(run.startedAt.toISOString())}, ${(run.durationMs / 1000).toFixed(1)} s.</p>`,
    // A count is coloured only when it is not zero: a red 0 would read as a failure.
    `<table id="summary"><tr><th>pass</th><th>fail</th><th>unsupported</th><th>error</th></tr><tr>${(['pass', 'fail', 'unsupported', 'error'] as const).map(k => `<td class="${count(k) ? k : ''}" data-kind="${k}">${count(k)}</td>`).join('')}</tr></table>`]
  out.push('<section id="requirements"><h2>Requirements</h2><table><tr><th>requirement</th><th>verdict</th><th>tests</th><th>what it says</th></tr>')
  for (const q of run.requirements) {
    const tests = run.results.filter(r => r.requirements.includes(q.id)).map(r => `<a href="#${esc(r.id)}">${esc(r.id)}</a>`)
    out.push(`<tr><td><code>${esc(q.id)}</code></td><td class="${esc(q.verdict)}">${esc(q.verdict)}</td><td>${tests.join('<br>')}</td><td>${esc(q.text)}<br><small>${esc(q.source)}</small></td></tr>`)
  }
  out.push('</table></section>', '<section id="tests"><h2>Tests</h2><table><tr><th>test</th><th>verdict</th><th>ms</th><th>traffic</th></tr>')
  for (const r of run.results) {
    const p = pcapPath(r.id)
    out.push(`<tr id="${esc(r.id)}"><td><code>${esc(r.id)}</code><br>${esc(r.title)}</td><td class="${r.verdict.kind}">${r.verdict.kind}</td><td>${r.ms}</td><td>${p ? `<a href="${esc(p.href)}">pcap</a>` : ''}</td></tr>`)
  }
  out.push('</table></section>')
  const bad = run.results.filter(r => r.verdict.kind === 'fail' || r.verdict.kind === 'error')
  out.push(`<section id="failures"><h2>Failures and errors (${bad.length})</h2>`)
  for (const r of bad) {
    const v = r.verdict
    out.push(`<article class="failure" id="failure-${esc(r.id)}"><h3><code>${esc(r.id)}</code> ${v.kind}</h3><p>${esc(r.title)}</p>`)
    if (v.kind === 'fail') out.push(`<p>${esc(v.message)}: expected <code>${esc(v.expected)}</code>, observed <code>${esc(v.observed)}</code></p>`)
    if (v.kind === 'fail' && v.requirement) out.push(`<p>This breaks <code>${esc(v.requirement)}</code>, met before the test's own check: its requirements are blocked.</p>`)
    if (v.kind === 'fail' && v.exchange) {
      out.push(`<p class="exchange">The exchange it is about: ${esc(v.exchange.service)} <code>${esc(v.exchange.format)}</code> xid ${esc(v.exchange.xid)}${v.frames?.length ? `, frames ${v.frames.join(' and ')} of the pcap (in red below)` : ''}.</p>`)
    }
    if (v.kind === 'error') out.push(`<p>${esc(v.message)}</p>`)
    const p = pcapPath(r.id)
    if (p) {
      let chart: string
      try {
        chart = sequenceSvg(chartMessages(readFileSync(p.file)), 200, v.kind === 'fail' ? v.frames : [])
      } catch (e) {
        chart = `<p>the pcap could not be read: ${esc((e as Error).message)}</p>`
      }
      out.push('<figure class="chart">', chart, `<figcaption>traffic of the test (<a href="${esc(p.href)}">pcap</a>)</figcaption></figure>`)
    }
    out.push('</article>')
  }
  out.push('</section></body></html>')
  return `${out.join('\n')}\n`
}
