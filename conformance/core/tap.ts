// TAP 14 for a certification run: one test point per conformance test; a failure or an
// error carries a YAML block (message, expected, observed, requirements); an unsupported
// test is a SKIP with its reason, so that TAP consumers do not count it as a failure.
import type { TestResult } from './runner.js'

const yamlString = (s: string): string => JSON.stringify(s)

export function tapHeader(total: number, seed: number): string {
  return `TAP version 14\n# lustre-conformance certify, seed ${seed}\n1..${total}\n`
}

export function tapLine(r: TestResult, n: number): string {
  const name = `${r.id} - ${r.title}`
  const v = r.verdict
  const lines: string[] = []
  switch (v.kind) {
    case 'pass':
      lines.push(`ok ${n} - ${name}`)
      break
    case 'unsupported':
      lines.push(`ok ${n} - ${name} # SKIP unsupported: ${v.reason}`)
      break
    case 'fail':
      lines.push(`not ok ${n} - ${name}`, '  ---', `  message: ${yamlString(v.message)}`, `  expected: ${yamlString(v.expected)}`, `  observed: ${yamlString(v.observed)}`)
      if (v.requirement) lines.push(`  breaks: ${yamlString(v.requirement)}`)
      if (v.exchange) lines.push(`  exchange: ${yamlString(`${v.exchange.service} ${v.exchange.format} xid ${v.exchange.xid}`)}`)
      if (v.frames?.length) lines.push(`  frames: [${v.frames.join(', ')}]`)
      break
    case 'error':
      lines.push(`not ok ${n} - ${name}`, '  ---', '  severity: error', `  message: ${yamlString(v.message)}`)
      break
  }
  if (v.kind === 'fail' || v.kind === 'error') {
    lines.push(`  requirements: [${r.requirements.map(yamlString).join(', ')}]`, `  duration_ms: ${r.ms}`)
    for (const note of r.notes) lines.push(`  # ${note}`)
    lines.push('  ...')
  }
  return `${lines.join('\n')}\n`
}

export function tapSummary(results: TestResult[]): string {
  const count = (k: string): number => results.filter(r => r.verdict.kind === k).length
  return `# pass ${count('pass')}, fail ${count('fail')}, unsupported ${count('unsupported')}, error ${count('error')}\n`
}
