#!/usr/bin/env node
// The CLI runs from the compiled tree; `npm ci` builds it (the prepare script).
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { dirname, join } from 'node:path'

const root = dirname(dirname(fileURLToPath(import.meta.url)))
const main = join(root, 'dist', 'src', 'cli', 'main.js')
if (!existsSync(main)) {
  console.error(`lustre-conformance: ${main} is missing; run "npm run build" (npm ci runs it for you)`)
  process.exit(2)
}
const { run } = await import(main)
process.exitCode = await run(process.argv.slice(2))
